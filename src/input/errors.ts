// The input part's errors: one CodedError class, one code per cause. Errno names (EACCES,
// ENOENT, ENOTTY...) stay the codes where the device said so, as the addon reports them.
import { CodedError } from '../errors';

export type InputErrorCode = 'ENATIVE' | 'EACCES' | 'EPERM' | 'ENOENT' | 'EINVALIDHOTKEY' | 'EINVALIDINPUT';

export class InputError extends CodedError<InputErrorCode> {
  constructor(code: InputErrorCode, problem: string, fix = '') {
    super(code, problem, fix);
    this.name = 'InputError';
  }
}
