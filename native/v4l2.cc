// v4l2loopback ioctls (issue: camera).
// Not implemented yet: registers nothing, so src/native.ts reports the feature as absent.
#include "addon.h"

namespace qdb {

void InitV4l2(Napi::Env env, Napi::Object exports) {}

}  // namespace qdb
