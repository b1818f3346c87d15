// The one error shape of the project. Every failure a user or a program may act on is a
// CodedError: a stable `code` (one per cause; programs branch on it, never on the text), the
// `problem` in one line, and the `fix` a person should apply. The message is derived from them,
// "problem [CODE] Fix: fix", so logs and stderr show one line; code that needs only the problem
// (STATUS=, doctor's table) reads `problem`, never strips the message.
//
// Part-specific classes (QemuDbusError, LibvirtError, ConfigError, ...) extend this one to narrow
// `code` to their own union and to add what only they know (a D-Bus error name, libvirt's number).

export interface CodedErrorOptions {
  cause?: unknown;
  /**
   * Retrying cannot help while this VM / configuration stays as it is: reported once, tried again
   * only on a new attach (routes) or never (the attacher: the service ends with `exitCode`).
   */
  permanent?: boolean;
  /** Process exit code when this error ends the service or a command (src/config/errors.ts). */
  exitCode?: number;
}

/** Newlines from peers' and libraries' texts are flattened: one error, one line. */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  readonly problem: string;
  /** '' when the problem already says what would be accepted (e.g. a usage error). */
  readonly fix: string;
  readonly permanent: boolean;
  readonly exitCode?: number;

  constructor(code: C, problem: string, fix = '', opts: CodedErrorOptions = {}) {
    const p = oneLine(problem);
    const f = oneLine(fix);
    super(f ? `${p} [${code}] Fix: ${f}` : p, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'CodedError';
    this.code = code;
    this.problem = p;
    this.fix = f;
    this.permanent = opts.permanent ?? false;
    if (opts.exitCode !== undefined) this.exitCode = opts.exitCode;
  }
}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof CodedError;
}

/** The `code` of any error that has one (CodedError, Node's system errors, the addon's). */
export function errorCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** The one-line problem: a CodedError's `problem`, else the message. */
export function errorProblem(err: unknown): string {
  if (err instanceof CodedError) return err.problem;
  return err instanceof Error ? oneLine(err.message) : String(err);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** See CodedErrorOptions.permanent. */
export function isPermanent(err: unknown): boolean {
  return (err as { permanent?: unknown } | null)?.permanent === true;
}
