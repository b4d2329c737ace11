/*
 * The three things Node has no binding for and src/base/ needs: posix_fadvise
 * DONTNEED (page-cache.ts), the address of a buffer's memory, which direct
 * I/O needs aligned (direct-write.ts), and a file sent to a socket by a
 * thread of its own, as Apache's workers do (send-file.ts). Built by
 * src/cli/build-native.ts into dist/vendor/native.node (Node-API, so one
 * build serves every Node version); loaded by native.ts. Everything works
 * without it, only slower.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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

/*
 * sendFile(socketFd, fileFd, offset, length, idleMs, callback) -> a control
 * object for abortSend(). Sends `length` bytes of the file from `offset` to
 * the socket on a thread of libuv's pool, as an Apache worker does: pread(2)
 * into a small buffer, send(2) it, again. The socket is non-blocking
 * (Node's), so when its buffer is full the thread waits in poll(2) for room,
 * at most `idleMs` without progress (then ETIMEDOUT). The thread works on its
 * own dup() of the socket, closed when the callback runs (on the main
 * thread), so Node closing its descriptor meanwhile cannot make the number
 * name another file. callback(errno, bytesSent): errno 0 when all was sent,
 * ENODATA when the file ended first, ECANCELED after abortSend(). The caller
 * must not write to the socket until the callback has run.
 *
 * Why not sendfile(2): measured on loopback with curl writing to a file
 * (docs/s3-webdav.md), sendfile leaves the copy out of the page cache to the
 * receiver, which then reads every byte cold from memory: curl's CPU rose by
 * half and the rate fell below Node's own streams. Copied through a buffer of
 * SEND_BUFFER bytes (it stays in the CPU's cache between the read and the
 * send), the receiver copies from warm memory: faster than Apache's mmap'd
 * 4 MiB writes in the same runs, and than 64 KiB to 1 MiB buffers.
 */
#define SEND_BUFFER (256 << 10)

/*
 * While sending, the socket holds at most this much not yet sent
 * (TCP_NOTSENT_LOWAT; put back as it was afterwards). Without it the socket
 * queues up to its whole send buffer; on loopback, whenever the receiver
 * opens its window, its own acknowledgement transmits what is queued, in
 * the receiver's time (perf of curl: 10.6% of its samples in the transmit
 * path against 6.0% with Apache), so curl ran slower. With 64 KiB queued at
 * most, our thread sends as room appears. curl -o FILE, 6 rounds each,
 * medians: 1,767-1,775 MB/s against 1,347-1,367 without (Apache 1,456-1,532
 * in the same runs); 32 KiB 1,677, 128 KiB 1,614, 256 KiB and 1 MiB no
 * better than without; into /dev/null 3,238 against 2,069 (Apache 2,646).
 */
#define SEND_NOTSENT_LOWAT (64 << 10)

typedef struct {
  int sock;           /* our dup of the socket; closed in send_complete */
  int done;           /* set in send_complete: abortSend() does nothing after */
  volatile int aborted;
} send_control;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref control_ref; /* keeps the control object (and its memory) alive while the thread runs */
  send_control *control;
  int file;
  int64_t offset, length, sent;
  int idle_ms;
  int error;
} send_job;

/* Waits until the socket takes more; 0, or the errno to end with. */
static int wait_for_room(send_job *job) {
  int idle = 0;
  for (;;) {
    if (__atomic_load_n(&job->control->aborted, __ATOMIC_ACQUIRE)) return ECANCELED;
    /* A slice at a time, so that an abort is seen even if nothing wakes the poll. */
    struct pollfd p = {.fd = job->control->sock, .events = POLLOUT};
    int r = poll(&p, 1, 100);
    if (r > 0) return 0; /* room, or an error that the next send reports */
    if (r < 0 && errno != EINTR) return errno;
    if (r == 0 && (idle += 100) >= job->idle_ms) return ETIMEDOUT;
  }
}

static void send_execute(napi_env env, void *data) {
  (void)env;
  send_job *job = data;
  char *buffer = malloc(SEND_BUFFER);
  if (!buffer) {
    job->error = ENOMEM;
    return;
  }
#ifdef TCP_NOTSENT_LOWAT
  int lowat = SEND_NOTSENT_LOWAT, before = 0;
  socklen_t length = sizeof before;
  int restore = getsockopt(job->control->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &before, &length) == 0 &&
                setsockopt(job->control->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) == 0;
#endif
  while (job->sent < job->length && job->error == 0) {
    if (__atomic_load_n(&job->control->aborted, __ATOMIC_ACQUIRE)) {
      job->error = ECANCELED;
      break;
    }
    int64_t left = job->length - job->sent;
    size_t want = left > SEND_BUFFER ? SEND_BUFFER : (size_t)left;
    ssize_t got = pread(job->file, buffer, want, (off_t)(job->offset + job->sent));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      job->error = got == 0 ? ENODATA : errno;
      break;
    }
    size_t at = 0;
    while (at < (size_t)got) {
      ssize_t n = send(job->control->sock, buffer + at, (size_t)got - at, MSG_NOSIGNAL);
      if (n > 0) {
        at += (size_t)n;
        job->sent += n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if ((job->error = wait_for_room(job)) != 0) break;
      } else {
        job->error = n < 0 ? errno : EPIPE;
        break;
      }
    }
  }
  free(buffer);
#ifdef TCP_NOTSENT_LOWAT
  /* The connection goes on (keep-alive) with Node writing to it as before. */
  if (restore) setsockopt(job->control->sock, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &before, sizeof before);
#endif
  /* abortSend() shuts the socket down: what that made fail is the abort. */
  if (job->error != 0 && __atomic_load_n(&job->control->aborted, __ATOMIC_ACQUIRE)) job->error = ECANCELED;
}

static void send_complete(napi_env env, napi_status status, void *data) {
  send_job *job = data;
  napi_value callback, global, argv[2];
  close(job->control->sock);
  job->control->done = 1;
  if (status == napi_cancelled && job->error == 0) job->error = ECANCELED;
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  napi_create_int32(env, job->error, &argv[0]);
  napi_create_int64(env, job->sent, &argv[1]);
  napi_delete_reference(env, job->callback);
  napi_delete_reference(env, job->control_ref);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, global, callback, 2, argv, NULL);
}

static void control_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value send_file(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], name, control_value;
  int32_t sock, file, idle_ms;
  int64_t offset, length;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_get_value_int32(env, argv[1], &file) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int32(env, argv[4], &idle_ms) != napi_ok || napi_typeof(env, argv[5], &type) != napi_ok ||
      type != napi_function || sock < 0 || file < 0 || offset < 0 || length < 0 || idle_ms <= 0) {
    napi_throw_type_error(env, NULL, "sendFile(socketFd, fileFd, offset, length, idleMs, callback): bad arguments");
    return NULL;
  }
  send_control *control = calloc(1, sizeof *control);
  send_job *job = calloc(1, sizeof *job);
  if (!control || !job) {
    free(control);
    free(job);
    napi_throw_error(env, "ENOMEM", "sendFile: out of memory");
    return NULL;
  }
  control->sock = dup(sock);
  if (control->sock < 0) {
    free(control);
    free(job);
    napi_throw_error(env, "EBADF", "sendFile: cannot dup the socket");
    return NULL;
  }
  if (napi_create_external(env, control, control_finalize, NULL, &control_value) != napi_ok) {
    close(control->sock);
    free(control);
    free(job);
    return NULL;
  }
  job->control = control;
  job->file = file;
  job->offset = offset;
  job->length = length;
  job->idle_ms = idle_ms;
  napi_create_reference(env, control_value, 1, &job->control_ref);
  napi_create_reference(env, argv[5], 1, &job->callback);
  napi_create_string_utf8(env, "disk-client:sendFile", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, send_execute, send_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return control_value;
}

/* abortSend(control): makes a sendFile() in progress stop soon (ECANCELED); nothing once it has completed. */
static napi_value abort_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "abortSend(control) takes what sendFile() returned");
    return NULL;
  }
  send_control *control = data;
  if (!control->done) {
    __atomic_store_n(&control->aborted, 1, __ATOMIC_RELEASE);
    /* Wakes a thread blocked in send or poll at once; the connection is being given up anyway. */
    shutdown(control->sock, SHUT_RDWR);
  }
  return NULL;
}

static int export(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export(env, exports, "drop", drop) || !export(env, exports, "misalignment", misalignment) ||
      !export(env, exports, "sendFile", send_file) || !export(env, exports, "abortSend", abort_send))
    return NULL;
  return exports;
}
