// Errors of the face: a usage or configuration problem is exit code 2, a runtime failure is 1.
// Every message is one line that says what is wrong and what would be accepted.

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
/** Not allowed, and retrying cannot change it (the VM's bus belongs to another user). */
export const EXIT_PERMISSION = 3;

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
  readonly exitCode = EXIT_USAGE;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export class UsageError extends Error {
  readonly code = 'EUSAGE';
  readonly exitCode = EXIT_USAGE;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function isUsageProblem(err: unknown): err is ConfigError | UsageError {
  return err instanceof ConfigError || err instanceof UsageError;
}
