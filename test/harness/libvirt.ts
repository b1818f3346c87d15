// A real libvirt for the libvirt tests: the system daemon (virtlogd + libvirtd started here by
// PID, for machines without systemd as PID 1), a non-root test user whose qemu:///session daemon
// libvirt spawns by itself, and TCG domains that direct-boot the project's test guest with
// <graphics type='dbus'/>. Domains are driven with virsh, as a user would; the bridge under test
// never uses virsh. Everything started here is stopped by PID.
import { execFile, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { buildGuest, type GuestScenario, type GuestParams } from './qemu';
import { sleep, spawnManaged, tempDir, waitFor, type Managed } from './procs';

export const TEST_USER = 'qdb-libvirt';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** /run/user/<uid>, owned by the user (libvirt's session daemon lives there) */
  runtimeDir: string;
  /** a clean environment for that user's processes */
  env: NodeJS.ProcessEnv;
  /** setpriv prefix: [cmd, args] that runs `args` as the user */
  as(cmd: string, args: string[]): [string, string[]];
}

/** The non-root user the session tests run as (created once; needs root). */
export function testUser(): TestUser {
  if (process.getuid?.() !== 0) throw new Error('the libvirt tests create a test user and start libvirtd: run them as root (CI does)');
  let id = spawnSync('id', ['-u', TEST_USER], { encoding: 'utf8' });
  if (id.status !== 0) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER], { encoding: 'utf8' });
    // Two test processes may race to create it: only a user that still does not exist is a failure.
    id = spawnSync('id', ['-u', TEST_USER], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error(`useradd ${TEST_USER} failed: ${r.stderr.trim()}`);
  }
  // Member of `libvirt`: read-write access to qemu:///system (the p2p case across uids).
  const groups = spawnSync('id', ['-nG', TEST_USER], { encoding: 'utf8' }).stdout.split(/\s+/);
  if (!groups.includes('libvirt')) {
    const r = spawnSync('usermod', ['-aG', 'libvirt', TEST_USER], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`usermod -aG libvirt ${TEST_USER} failed: ${r.stderr.trim()} (is libvirt-daemon-system installed?)`);
  }
  const uid = Number(id.stdout.trim());
  const gid = Number(spawnSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).stdout.trim());
  const home = `/home/${TEST_USER}`;
  const runtimeDir = `/run/user/${uid}`;
  fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  fs.chownSync(runtimeDir, uid, gid);
  fs.chmodSync(runtimeDir, 0o700);
  const env: NodeJS.ProcessEnv = { HOME: home, USER: TEST_USER, LOGNAME: TEST_USER, PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', XDG_RUNTIME_DIR: runtimeDir };
  return {
    name: TEST_USER,
    uid,
    gid,
    home,
    runtimeDir,
    env,
    as: (cmd, args) => ['setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', cmd, ...args]],
  };
}

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** virsh -c URI ARGS (as `user` when given); rejects on a non-zero exit unless allowFail. */
export function virsh(uri: string, args: string[], opts: { user?: TestUser; allowFail?: boolean; timeoutMs?: number } = {}): Promise<VirshResult> {
  const [cmd, argv] = opts.user ? opts.user.as('virsh', ['-c', uri, ...args]) : ['virsh', ['-c', uri, ...args]];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { env: opts.user ? opts.user.env : process.env, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      const r = { code, stdout: String(stdout), stderr: String(stderr) };
      if (code !== 0 && !opts.allowFail) reject(new Error(`virsh -c ${uri} ${args.join(' ')} failed (${code}): ${r.stderr.trim()}`));
      else resolve(r);
    });
  });
}

export interface SystemLibvirt {
  /** false when a libvirtd was already running (then it is left alone) */
  readonly owned: boolean;
  readonly dir: string;
  /** Stops libvirtd by PID and starts it again (running domains keep running); only when owned. */
  restartLibvirtd(): Promise<void>;
  stop(): Promise<void>;
}

const SYSTEM_SOCKET = '/run/libvirt/libvirt-sock';

/** The qemu:///system daemon: reused when one answers, else virtlogd + libvirtd started here. */
export async function startSystemLibvirt(): Promise<SystemLibvirt> {
  const dir = tempDir('libvirtd');
  if (fs.existsSync(SYSTEM_SOCKET) && (await virsh('qemu:///system', ['version'], { allowFail: true, timeoutMs: 20_000 })).code === 0) {
    return {
      owned: false,
      dir,
      restartLibvirtd: () => Promise.reject(new Error('a qemu:///system libvirtd not started by these tests is running, so they cannot restart it: stop it (by its PID) and run again')),
      stop: async () => undefined,
    };
  }
  for (const bin of ['/usr/sbin/libvirtd', '/usr/sbin/virtlogd']) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: install libvirt-daemon-system libvirt-daemon-driver-qemu (bash scripts/setup.sh does)`);
  }
  // Without systemd there is no polkit to ask: unix-socket access is decided by the socket
  // permissions instead, as on a host configured for the `libvirt` group (read-write for its
  // members, read-only for everyone).
  const conf = path.join(dir, 'libvirtd.conf');
  fs.writeFileSync(conf, 'unix_sock_group = "libvirt"\nunix_sock_ro_perms = "0777"\nunix_sock_rw_perms = "0770"\nauth_unix_ro = "none"\nauth_unix_rw = "none"\n');
  const virtlogd = spawnManaged('virtlogd', '/usr/sbin/virtlogd', [], { logFile: path.join(dir, 'virtlogd.log') });
  const startLibvirtd = (): Managed =>
    spawnManaged('libvirtd', '/usr/sbin/libvirtd', ['--config', conf], {
      logFile: path.join(dir, 'libvirtd.log'),
      env: { ...process.env, LIBVIRT_LOG_OUTPUTS: `3:file:${path.join(dir, 'libvirtd-debug.log')}` },
    });
  let libvirtd = startLibvirtd();
  const stop = async (): Promise<void> => {
    await libvirtd.stop(5000);
    await virtlogd.stop(5000);
  };
  const answering = async (): Promise<void> => {
    try {
      await waitFor('libvirtd answering on qemu:///system', 60_000, async () => fs.existsSync(SYSTEM_SOCKET) && (await virsh('qemu:///system', ['version'], { allowFail: true, timeoutMs: 20_000 })).code === 0, 200);
    } catch (e) {
      const log = [libvirtd, virtlogd].map((p) => `${p.name}: ${p.log().slice(-800)}`).join('\n');
      await stop();
      throw new Error(`${(e as Error).message}\n${log}`);
    }
  };
  await answering();
  return {
    owned: true,
    dir,
    restartLibvirtd: async () => {
      await libvirtd.stop(5000);
      libvirtd = startLibvirtd();
      await answering();
    },
    stop,
  };
}

export interface DomainOptions {
  name: string;
  scenario: GuestScenario | GuestScenario[];
  params?: GuestParams;
  /** attributes of <graphics type='dbus'>, e.g. "p2p='yes'" */
  graphicsAttrs?: string;
  /** leave out <audio type='dbus'/> and its wiring (for doctor) */
  noAudio?: boolean;
  /** <on_reboot>: 'destroy' (default) or 'restart' (what `virsh reboot` needs: with destroy,
   *  libvirt turns a reboot into a shutdown) */
  onReboot?: 'destroy' | 'restart';
  /** where the guest's serial console goes (must be writable by the user QEMU runs as) */
  serialLog: string;
}

/** Domain XML that direct-boots the test guest under TCG with the D-Bus display and audio. */
export async function domainXml(o: DomainOptions): Promise<string> {
  const g = await buildGuest();
  const scenarios = Array.isArray(o.scenario) ? o.scenario : [o.scenario];
  const params = Object.entries(o.params ?? {}).map(([k, v]) => ` bridge.${k}=${String(v)}`).join('');
  const audioRef = o.noAudio ? '' : "\n      <audio id='1'/>\n    ";
  return `<domain type='qemu'>
  <name>${o.name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${g.kernel}</kernel>
    <initrd>${g.initrd}</initrd>
    <cmdline>console=ttyS0 loglevel=6 panic=-1 vt.global_cursor_default=0 bridge.scenario=${scenarios.join(',')}${params}</cmdline>
  </os>
  <features>
    <!-- without it libvirt starts QEMU with -no-acpi: no power button for virsh shutdown/reboot -->
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>${o.onReboot ?? 'destroy'}</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='${o.serialLog}'/>
      <target port='0'/>
    </serial>
    <input type='keyboard' bus='virtio'/>
    <input type='tablet' bus='virtio'/>
    <graphics type='dbus' ${o.graphicsAttrs ?? ''}>${audioRef}</graphics>${o.noAudio ? '' : "\n    <audio id='1' type='dbus'/>"}
    <sound model='ich9'>
      <codec type='duplex'/>${o.noAudio ? '' : "\n      <audio id='1'/>"}
    </sound>
    <video>
      <model type='vga'/>
    </video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

export interface TestDomain {
  readonly name: string;
  readonly uri: string;
  readonly serialLog: string;
  start(): Promise<void>;
  destroy(): Promise<void>;
  /** `virsh reboot` (ACPI power button + libvirt's fake reboot; the guest's /init powers off on it) */
  reboot(): Promise<void>;
  /** `virsh shutdown` (ACPI power button), then waits until the domain is shut off */
  shutdown(): Promise<void>;
  /** `virsh domid`: the running domain's id */
  id(): Promise<number>;
  /** the serial console log of the current boot so far */
  serial(): string;
  /** destroy (if running) and undefine */
  remove(): Promise<void>;
}

/** Defines a persistent domain (as `user` for qemu:///session). */
export async function defineDomain(uri: string, o: Omit<DomainOptions, 'serialLog'>, user?: TestUser): Promise<TestDomain> {
  const dir = fs.mkdtempSync(path.join('/tmp', `qdb-lv-${o.name}-`));
  // QEMU runs as the session user or as libvirt's qemu user: both must write the serial log.
  fs.chmodSync(dir, 0o777);
  const serialLog = path.join(dir, 'serial.log');
  const xmlFile = path.join(dir, 'domain.xml');
  fs.writeFileSync(xmlFile, await domainXml({ ...o, serialLog }), { mode: 0o644 });
  await virsh(uri, ['define', xmlFile], { user });
  const d: TestDomain = {
    name: o.name,
    uri,
    serialLog,
    start: async () => {
      // A fresh serial log per start: the guest's markers of this boot only.
      fs.rmSync(serialLog, { force: true });
      await virsh(uri, ['start', o.name], { user });
    },
    destroy: async () => {
      await virsh(uri, ['destroy', o.name], { user });
    },
    reboot: async () => {
      await virsh(uri, ['reboot', o.name], { user });
    },
    shutdown: async () => {
      await virsh(uri, ['shutdown', o.name], { user });
      await waitFor(`${o.name} shut off`, 60_000, async () => (await virsh(uri, ['domstate', o.name], { user })).stdout.trim() === 'shut off', 200);
    },
    id: async () => Number((await virsh(uri, ['domid', o.name], { user })).stdout.trim()),
    serial: () => {
      try {
        return fs.readFileSync(serialLog, 'utf8');
      } catch {
        return '';
      }
    },
    remove: async () => {
      await virsh(uri, ['destroy', o.name], { user, allowFail: true });
      await virsh(uri, ['undefine', o.name], { user, allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return d;
}

/** Waits for a line matching re in the domain's serial log. */
export async function waitForDomainSerial(d: TestDomain, re: RegExp, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${re} on ${d.name}'s serial console`, timeoutMs, () => re.test(d.serial()), 200);
}

/** Stops the test user's qemu:///session libvirtd and virtlogd by PID (libvirt started them on first use). */
export async function stopSessionLibvirt(user: TestUser): Promise<void> {
  await stopByPidFile(user, 'libvirtd');
  await stopByPidFile(user, 'virtlogd');
}

async function stopByPidFile(user: TestUser, daemon: string): Promise<void> {
  const pidFile = path.join(user.runtimeDir, 'libvirt', `${daemon}.pid`);
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  // Only that user's libvirtd: a stale pid file may name a reused PID.
  try {
    const st = fs.statSync(`/proc/${pid}`);
    if (st.uid !== user.uid || fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== daemon) return;
  } catch {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
