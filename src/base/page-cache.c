/*
 * posix_fadvise(POSIX_FADV_DONTNEED) for Node, which has no binding for it:
 * the one system call src/base/page-cache.ts needs. Built by
 * src/cli/build-native.ts into dist/vendor/page-cache.node (Node-API, so one
 * build serves every Node version); page-cache.ts works without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>

/* drop(fd, offset, length) -> 0, or the errno posix_fadvise returned; throws on arguments that are not numbers. */
static napi_value drop(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset, length;
  napi_value out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "drop(fd, offset, length) takes three non-negative integers");
    return NULL;
  }
  int rc = posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
  napi_create_int32(env, rc, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "drop", NAPI_AUTO_LENGTH, drop, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "drop", fn) != napi_ok) return NULL;
  return exports;
}
