// The man page qemu-dbus-bridge(1), generated from what the program itself says: the yargs help
// of the program and of every command (captured by the caller), the exit codes
// (EXIT_CODE_MEANINGS), every config key with what it accepts (ALLOWED, the same text the
// validation errors use) and its default (the uncommented values of docs/config-example.toml).
// Nothing here is written twice, so the page cannot drift from --help.
import { EXIT_CODE_MEANINGS } from '../config/errors';
import { ALLOWED } from '../config/schema';

export interface ManInput {
  version: string;
  /** YYYY-MM-DD, from SOURCE_DATE_EPOCH when building a package (reproducible). */
  date: string;
  /** `qemu-dbus-bridge --help`. */
  overview: string;
  /** `qemu-dbus-bridge <command> --help`, in the order of the help's command list. */
  commands: { name: string; help: string }[];
  /** docs/config-example.toml, for the defaults. */
  configExample: string;
}

/** roff text: backslashes and minus signs escaped, no line starting with a control character. */
function roff(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/\\/g, '\\e').replace(/-/g, '\\-'))
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

/** A block shown as the program prints it (no filling, no hyphenation). */
function verbatim(text: string): string {
  return ['.nf', roff(text.replace(/\s+$/, '')), '.fi'].join('\n');
}

/** `table.key` -> default, from the uncommented `key = value` lines of the example file. */
export function configDefaults(example: string): Record<string, string> {
  const out: Record<string, string> = {};
  let table = '';
  const lines = example.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const t = /^\[(\w+)\]$/.exec(line);
    if (t) {
      table = t[1];
      continue;
    }
    const kv = /^(\w+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    let value = kv[2].trim();
    if (value === '[') {
      // A list spread over lines: the default is what is not commented out inside it.
      const items: string[] = [];
      while (++i < lines.length && lines[i].trim() !== ']') {
        const item = lines[i].trim();
        if (item && !item.startsWith('#')) items.push(item.replace(/,$/, ''));
      }
      value = `[${items.join(', ')}]`;
    }
    out[`${table}.${kv[1]}`] = value;
  }
  return out;
}

/** The help's first line is the command's usage; the rest is shown as printed. */
function commandSection(name: string, help: string): string {
  return [`.SS ${roff(name)}`, verbatim(help.split('\n').slice(1).join('\n').replace(/^\n+/, ''))].join('\n');
}

export function renderManPage(input: ManInput): string {
  const defaults = configDefaults(input.configExample);
  const [, ...descriptionLines] = input.overview.split('\n\n')[0].split('\n');
  const description = descriptionLines.join(' ').trim() || input.overview.split('\n\n')[1]?.trim() || '';
  const summary = description.replace(/\.$/, '');
  const out: string[] = [
    `.TH QEMU\\-DBUS\\-BRIDGE 1 "${input.date}" "qemu\\-dbus\\-bridge ${roff(input.version)}" "User Commands"`,
    '.SH NAME',
    `qemu\\-dbus\\-bridge \\- ${roff(summary.charAt(0).toLowerCase() + summary.slice(1))}`,
    '.SH SYNOPSIS',
    '.B qemu\\-dbus\\-bridge',
    '.I command',
    '.RI [ options ]',
    '.SH DESCRIPTION',
    roff(
      'qemu-dbus-bridge attaches to a running QEMU through its D-Bus display interface ' +
        '(-display dbus, -audiodev dbus) and plays the guest audio into PipeWire or PulseAudio, feeds a ' +
        'host microphone back while the guest records, turns the guest screen into a webcam (a PipeWire ' +
        'camera node or a v4l2loopback device) and forwards host evdev keyboards and mice into the VM. ' +
        'It runs as a systemd user service per VM: qemu-dbus-bridge@VM.service.',
    ),
    '.PP',
    'The program\'s own overview (\\fBqemu\\-dbus\\-bridge \\-\\-help\\fR):',
    verbatim(input.overview),
    '.SH COMMANDS',
    ...input.commands.map((c) => commandSection(c.name, c.help)),
    '.SH EXIT STATUS',
    ...EXIT_CODE_MEANINGS.flatMap(([code, meaning]) => ['.TP', `.B ${code}`, roff(meaning)]),
    '.PP',
    'The systemd unit does not restart the service after exit status 2: a restart cannot fix a configuration error.',
    '.SH CONFIGURATION',
    roff(
      'Each VM may have $XDG_CONFIG_HOME/qemu-dbus-bridge/VM.toml (~/.config/qemu-dbus-bridge/VM.toml), ' +
        'where VM is what --vm names. Flags override the file key by key. The file is validated strictly: ' +
        'an error names the file, the key, the bad value and what is allowed, and unknown keys are errors. ' +
        'The keys, by TOML table, with what each accepts and its default:',
    ),
    ...Object.entries(ALLOWED).flatMap(([key, allowed]) => [
      '.TP',
      `.B ${roff(key)}`,
      roff(`${allowed.charAt(0).toUpperCase()}${allowed.slice(1)}.`) + (key in defaults ? `\nDefault: \\fB${roff(defaults[key])}\\fR.` : ''),
    ]),
    '.PP',
    roff(
      'Several webcams (e.g. one per head of a two-head VM): instead of the one [camera] table, [[camera]] entries (an array of tables) with the same keys, ' +
        'one per webcam; each names its console, no two share a target, and each runs as its own route camera-0, camera-1, ... (its position). ' +
        'The --camera flags set the one [camera]; over [[camera]] entries only --camera none is accepted (it turns them all off).',
    ),
    '.PP',
    roff('A commented example with every key: /usr/share/doc/qemu-dbus-bridge/config-example.toml (Debian package), or docs/config-example.toml in the npm package.'),
    '.SH FILES',
    '.TP',
    '.I ~/.config/qemu\\-dbus\\-bridge/VM.toml',
    'The configuration of the VM named VM.',
    '.TP',
    '.I /usr/lib/systemd/user/qemu\\-dbus\\-bridge@.service',
    roff('The user unit template (Debian package). After an npm install, `qemu-dbus-bridge install-unit` writes it to ~/.config/systemd/user/.'),
    '.SH EXAMPLES',
    '.nf',
    roff('systemctl --user enable --now qemu-dbus-bridge@win11'),
    roff('systemctl --user status qemu-dbus-bridge@win11'),
    roff('journalctl --user -u qemu-dbus-bridge@win11'),
    '.fi',
    '.SH SEE ALSO',
    '.BR systemctl (1),',
    '.BR journalctl (1),',
    '.BR qemu (1)',
    '',
  ];
  return out.join('\n');
}
