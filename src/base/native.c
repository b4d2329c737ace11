/*
 * The two things Node has no binding for and src/base/ needs: posix_fadvise
 * DONTNEED (page-cache.ts) and the address of a buffer's memory, which
 * direct I/O needs aligned (direct-write.ts). Built by
 * src/cli/build-native.ts into dist/vendor/native.node (Node-API, so one
 * build serves every Node version); loaded by native.ts. Everything works
 * without it, only slower.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>

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

/* misalignment(buffer) -> the address of the buffer's first byte modulo 4096 (direct I/O needs aligned memory). */
static napi_value misalignment(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  size_t length;
  napi_value out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "misalignment(buffer) takes a Buffer");
    return NULL;
  }
  napi_create_uint32(env, (uint32_t)((uintptr_t)data % 4096), &out);
  return out;
}

static int export(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export(env, exports, "drop", drop) || !export(env, exports, "misalignment", misalignment)) return NULL;
  return exports;
}
