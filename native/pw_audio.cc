// PipeWire playback/capture streams (issue: audio).
// Not implemented yet: registers nothing, so src/native.ts reports the feature as absent.
#include "addon.h"

namespace qdb {

void InitPwAudio(Napi::Env env, Napi::Object exports) {}

}  // namespace qdb
