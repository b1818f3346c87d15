// libyuv conversion and scaling (issue: camera).
// Not implemented yet: registers nothing, so src/native.ts reports the feature as absent.
#include "addon.h"

namespace qdb {

void InitYuv(Napi::Env env, Napi::Object exports) {}

}  // namespace qdb
