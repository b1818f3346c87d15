// Errors of the face: a usage or configuration problem is exit code 2, a runtime failure is 1,
// a refusal that cannot change (another user's bus) is 3.
// Every message is one line that says what is wrong and what would be accepted.

import { CodedError } from '../errors';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
/** Not allowed, and retrying cannot change it (the VM's bus belongs to another user). */
export const EXIT_PERMISSION = 3;

/** What each exit code means, for --help and the man page (one definition). */
export const EXIT_CODE_MEANINGS: readonly (readonly [number, string])[] = [
  [EXIT_OK, 'ok'],
  [EXIT_RUNTIME, 'runtime failure (VM or sound server unreachable, a crash)'],
  [EXIT_USAGE, 'usage or configuration error (the message names the flag or file and key)'],
  [EXIT_PERMISSION, "not allowed: the VM's D-Bus belongs to another user (the message says who may connect and the ways out), or another bridge already bridges the VM (the message names its PID)"],
];

/** A config file problem; the message names the file and key and what would be accepted. */
export class ConfigError extends CodedError<'ECONFIG'> {
  declare readonly exitCode: number;
  constructor(message: string) {
    super('ECONFIG', message, '', { exitCode: EXIT_USAGE });
    this.name = 'ConfigError';
  }
}

/** A command-line problem; the message names the flag and what would be accepted. */
export class UsageError extends CodedError<'EUSAGE'> {
  declare readonly exitCode: number;
  constructor(message: string) {
    super('EUSAGE', message, '', { exitCode: EXIT_USAGE });
    this.name = 'UsageError';
  }
}

export function isUsageProblem(err: unknown): err is ConfigError | UsageError {
  return err instanceof ConfigError || err instanceof UsageError;
}
