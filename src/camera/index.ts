// The camera part: guest screen -> webcam. The service builds a CameraConsoleListener (handed to
// src/qemu/ as the ConsoleListenerHandler), opens a sink from the parsed flags and runs a
// CameraPipeline between them. options.ts is the one definition of the `[camera]` settings.
import type { Logger } from '../log';
import { cameraDescription, cameraNodeName } from '../stream-identity';
import { CameraConsoleListener, CameraListenerOptions } from './listener';
import type { CameraConfig } from './options';
import { CameraPipeline } from './pipeline';
import { FileSink } from './sinks/file';
import { PipeWireSink } from './sinks/pipewire';
import type { CameraSink } from './sinks/types';
import { V4l2Sink } from './sinks/v4l2';

export { cameraDevices, noDeviceHint } from './devices';
export { loopbackDevices, v4l2loopbackModule } from './loopback';
export type { CameraDevice } from './devices';
export type { LoopbackDevice, V4l2LoopbackModule } from './loopback';
export { CameraConsoleListener } from './listener';
export type { PictureSource, PictureView } from './listener';
export { CameraPipeline } from './pipeline';
export { CAMERA_DEFAULTS, CAMERA_PIXEL_FORMATS, cameraConfigOf, cameraTargetKey, parseCameraDevice, parseCameraFormat, parseCameraFps, parseCameraSize, resolveCameraTarget } from './options';
export type { CameraConfig, CameraDeviceChoice, CameraSettings, CameraTarget } from './options';
export { pinGuestResolution } from './pin-resolution';
export type { UiInfoTarget } from './pin-resolution';
export { FileSink } from './sinks/file';
export { PipeWireSink, cameraNodeName } from './sinks/pipewire';
export { V4l2Sink, modprobeLine } from './sinks/v4l2';
export type { CameraPixelFormat, CameraSink } from './sinks/types';

/** The PipeWire node.name of a camera (`pipewire:NODE`, else named after the VM and, for one of several, its console). */
export function pipewireNodeName(cfg: CameraConfig, vmName: string): string {
  return (cfg.target.kind === 'pipewire' ? cfg.target.node : undefined) ?? cameraNodeName(vmName, cfg.console);
}

/** Opens the sink the config names (null for `--camera none`). Throws the sink's clear error. */
export function openCameraSink(cfg: CameraConfig, vmName: string, log?: Logger): CameraSink | null {
  const { width, height, fps, format } = cfg;
  switch (cfg.target.kind) {
    case 'none':
      return null;
    case 'pipewire':
      return new PipeWireSink({ vmName, nodeName: pipewireNodeName(cfg, vmName), description: cameraDescription(vmName, cfg.console), width, height, fps, log });
    case 'v4l2':
      return new V4l2Sink({ path: cfg.target.path, width, height, fps, format, log });
    case 'file':
      return new FileSink({ path: cfg.target.path, width, height, fps, format });
  }
}

export interface Camera {
  readonly listener: CameraConsoleListener;
  readonly pipeline: CameraPipeline;
  readonly sink: CameraSink;
  stop(): Promise<void>;
}

/** Listener + sink + running pipeline for one VM. */
export function startCamera(cfg: CameraConfig, vmName: string, opts: Omit<CameraListenerOptions, 'cursor'> & { onViewerChange?: () => void } = {}): Camera | null {
  const sink = openCameraSink(cfg, vmName, opts.log);
  if (!sink) return null;
  const listener = new CameraConsoleListener({ ...opts, cursor: cfg.cursor });
  const pipeline = new CameraPipeline({ source: listener, sink, log: opts.log, onViewerChange: opts.onViewerChange });
  pipeline.start();
  return {
    listener,
    pipeline,
    sink,
    async stop() {
      pipeline.stop();
      listener.close();
      await sink.close();
    },
  };
}
