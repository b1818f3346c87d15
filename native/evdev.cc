// libevdev devices (issue: input).
// Not implemented yet: registers nothing, so src/native.ts reports the feature as absent.
#include "addon.h"

namespace qdb {

void InitEvdev(Napi::Env env, Napi::Object exports) {}

}  // namespace qdb
