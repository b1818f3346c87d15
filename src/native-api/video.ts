// Types of the addon's camera functions: native/yuv.cc (libyuv), native/v4l2.cc (ioctls) and
// native/pw_video.cc (PipeWire camera node). Policy lives in src/camera/; these only move pixels.

/** Camera pixel formats, as the addon numbers them in yuvCompose: 0 YUY2, 1 I420, 2 NV12. */
export type YuvFormatCode = 0 | 1 | 2;

export interface ComposeCursor {
  /** width*height*4 bytes, ARGB (B,G,R,A in memory), straight alpha */
  data: Uint8Array;
  width: number;
  height: number;
  /** top-left corner in framebuffer pixels (mouse position minus hotspot); may be negative */
  x: number;
  y: number;
}

export interface ComposeOptions {
  /** the ARGB picture (B,G,R,A in memory); only read, never written */
  fb: Uint8Array;
  fbStride: number;
  fbWidth: number;
  fbHeight: number;
  cursor?: ComposeCursor | null;
  /**
   * Where the cursor is blended (needed only when a cursor is visible): (cursor width + 2) *
   * (height + 2) * 4 bytes when the picture is not scaled, fbWidth*fbHeight*4 when it is
   * (cursorWorkBytes in src/camera/pipeline.ts).
   */
  cursorWork?: Uint8Array;
  /** rect width*height*4 bytes: the scaled ARGB picture (unused when the picture is not scaled) */
  scratch?: Uint8Array;
  camWidth: number;
  camHeight: number;
  /** where the picture goes inside the camera frame: [x, y, width, height] */
  rect: [number, number, number, number];
  format: YuvFormatCode;
  /** yuvFrameSize(format, camWidth, camHeight) bytes, tightly packed planes */
  out: Uint8Array;
  /**
   * [x, y, width, height] in picture pixels: out already holds this picture's frame (same
   * geometry and format) except there and under the cursor's last position, which the caller
   * must include; only that is converted again. Absent: the whole frame.
   */
  damage?: [number, number, number, number];
}

export interface V4l2Capability {
  driver: string;
  card: string;
  busInfo: string;
  version: number;
  capabilities: number;
  /** device_caps when the driver reports them, else capabilities */
  deviceCaps: number;
}

export interface V4l2PixFormat {
  width: number;
  height: number;
  pixelformat: number;
  field: number;
  bytesperline: number;
  sizeimage: number;
  colorspace: number;
}

export interface PwCameraOptions {
  /** pw_stream name. */
  streamName: string;
  /** Node properties (node.name, node.description, media.class...), built by src/stream-identity.ts. */
  props: Record<string, string>;
  width: number;
  height: number;
  fps: number;
  /** PipeWire socket name or absolute path (PIPEWIRE_REMOTE semantics); default from the env */
  remote?: string;
  /** offered formats, preferred first */
  formats: ('YUY2' | 'I420' | 'NV12')[];
}

export interface PwCameraHandle {
  /** hands over one frame (tightly packed planes) in `format`; the node repeats it until the next */
  push(frame: Uint8Array, format: 'YUY2' | 'I420' | 'NV12'): void;
  /** the format the consumer negotiated, or null */
  format(): 'YUY2' | 'I420' | 'NV12' | null;
  /** pw_stream state name ('unconnected', 'connecting', 'paused', 'streaming', 'error') */
  state(): { state: string; error?: string };
  /** PipeWire node id (0xffffffff until known) */
  nodeId(): number;
  stats(): { pushed: number; sent: number; repeated: number; noBuffer: number; waiting: number };
  close(): void;
}

export interface VideoNativeApi {
  /** Converts a pixman-format rectangle into the ARGB framebuffer at (dx, dy). Throws EFORMAT/ERANGE. */
  yuvBlit(
    src: Uint8Array,
    srcStride: number,
    pixmanFormat: number,
    width: number,
    height: number,
    dst: Uint8Array,
    dstStride: number,
    dx: number,
    dy: number,
  ): void;
  /** Framebuffer (+cursor) -> letterboxed camera frame in YUY2/I420/NV12 (BT.601 limited range). */
  yuvCompose(opts: ComposeOptions): void;
  yuvFrameSize(format: YuvFormatCode, width: number, height: number): number;
  v4l2QueryCap(fd: number): V4l2Capability;
  /** VIDIOC_S_FMT on the OUTPUT queue; returns what the driver kept */
  v4l2SetOutputFormat(fd: number, width: number, height: number, fourcc: number, bytesperline: number, sizeimage: number): V4l2PixFormat;
  /** VIDIOC_S_PARM timeperframe 1/fps on the OUTPUT queue; returns what the driver kept */
  v4l2SetOutputFps(fd: number, fps: number): { numerator: number; denominator: number };
  /** VIDIOC_STREAMON on the OUTPUT queue: makes the opener v4l2loopback's writer */
  v4l2StreamOn(fd: number): void;
  PwCamera: new (opts: PwCameraOptions) => PwCameraHandle;
}
