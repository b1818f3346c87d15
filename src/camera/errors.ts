// The camera part's errors: one CodedError class, one code per cause. ECAMERA_* name what is
// wrong with the v4l2 device, ECLOSED/EFORMAT/ERANGE a frame the sink cannot take (the sink
// contract checks them), EPIXMANFORMAT a guest picture format we do not convert, EUSAGE a bad
// option value; an errno name (EIO, EPIPE...) stays the code where the system said so.
import { CodedError, type CodedErrorOptions } from '../errors';

export class CameraError extends CodedError {
  constructor(code: string, problem: string, fix = '', opts: CodedErrorOptions = {}) {
    super(code, problem, fix, opts);
    this.name = 'CameraError';
  }
}
