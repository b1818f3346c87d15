// PipeWire microphone capture streams (issue: audio in).
// Not implemented yet: registers nothing, so src/native.ts reports the feature as absent.
#include "addon.h"

namespace qdb {

void InitPwCapture(Napi::Env env, Napi::Object exports) {}

}  // namespace qdb
