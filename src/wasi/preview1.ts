// The `wasi_snapshot_preview1` surface igord links: every function of the preview1 spec with its
// core-wasm signature (checked at load, since a JS host function would accept any), and which of
// them igord serves. The rest link and answer ENOSYS (EBADF when their first argument is a file
// descriptor other than stdout/stderr), so modules that import more than they use still load.

export const WASI_MODULE = "wasi_snapshot_preview1";

/** WASI errno values used here (preview1 `errno`). */
export const Errno = {
  success: 0,
  badf: 8,
  fault: 21,
  inval: 28,
  nosys: 52,
  spipe: 70,
  notcapable: 76,
} as const;

type Sig = readonly [params: string, results: string];

/** name → [params, results] as comma-joined core types. */
const SIGNATURES: Record<string, Sig> = {
  args_get: ["i32,i32", "i32"],
  args_sizes_get: ["i32,i32", "i32"],
  environ_get: ["i32,i32", "i32"],
  environ_sizes_get: ["i32,i32", "i32"],
  clock_res_get: ["i32,i32", "i32"],
  clock_time_get: ["i32,i64,i32", "i32"],
  fd_advise: ["i32,i64,i64,i32", "i32"],
  fd_allocate: ["i32,i64,i64", "i32"],
  fd_close: ["i32", "i32"],
  fd_datasync: ["i32", "i32"],
  fd_fdstat_get: ["i32,i32", "i32"],
  fd_fdstat_set_flags: ["i32,i32", "i32"],
  fd_fdstat_set_rights: ["i32,i64,i64", "i32"],
  fd_filestat_get: ["i32,i32", "i32"],
  fd_filestat_set_size: ["i32,i64", "i32"],
  fd_filestat_set_times: ["i32,i64,i64,i32", "i32"],
  fd_pread: ["i32,i32,i32,i64,i32", "i32"],
  fd_prestat_get: ["i32,i32", "i32"],
  fd_prestat_dir_name: ["i32,i32,i32", "i32"],
  fd_pwrite: ["i32,i32,i32,i64,i32", "i32"],
  fd_read: ["i32,i32,i32,i32", "i32"],
  fd_readdir: ["i32,i32,i32,i64,i32", "i32"],
  fd_renumber: ["i32,i32", "i32"],
  fd_seek: ["i32,i64,i32,i32", "i32"],
  fd_sync: ["i32", "i32"],
  fd_tell: ["i32,i32", "i32"],
  fd_write: ["i32,i32,i32,i32", "i32"],
  path_create_directory: ["i32,i32,i32", "i32"],
  path_filestat_get: ["i32,i32,i32,i32,i32", "i32"],
  path_filestat_set_times: ["i32,i32,i32,i32,i64,i64,i32", "i32"],
  path_link: ["i32,i32,i32,i32,i32,i32,i32", "i32"],
  path_open: ["i32,i32,i32,i32,i32,i64,i64,i32,i32", "i32"],
  path_readlink: ["i32,i32,i32,i32,i32,i32", "i32"],
  path_remove_directory: ["i32,i32,i32", "i32"],
  path_rename: ["i32,i32,i32,i32,i32,i32", "i32"],
  path_symlink: ["i32,i32,i32,i32,i32", "i32"],
  path_unlink_file: ["i32,i32,i32", "i32"],
  poll_oneoff: ["i32,i32,i32,i32", "i32"],
  proc_exit: ["i32", ""],
  proc_raise: ["i32", "i32"],
  sched_yield: ["", "i32"],
  random_get: ["i32,i32", "i32"],
  sock_accept: ["i32,i32,i32", "i32"],
  sock_recv: ["i32,i32,i32,i32,i32,i32", "i32"],
  sock_send: ["i32,i32,i32,i32,i32", "i32"],
  sock_shutdown: ["i32,i32", "i32"],
};

/** The functions igord answers with real behaviour (the others are ENOSYS/EBADF stubs). */
export const SERVED = [
  "args_get",
  "args_sizes_get",
  "environ_get",
  "environ_sizes_get",
  "clock_res_get",
  "clock_time_get",
  "fd_close",
  "fd_fdstat_get",
  "fd_prestat_get",
  "fd_seek",
  "fd_write",
  "proc_exit",
  "random_get",
  "sched_yield",
] as const;

export function wasiSignature(name: string): { params: string[]; results: string[] } | null {
  const s = SIGNATURES[name];
  if (!s) return null;
  const split = (t: string): string[] => (t === "" ? [] : t.split(","));
  return { params: split(s[0]), results: split(s[1]) };
}

/** Whether an unserved function takes a file descriptor first (it answers EBADF for unknown fds). */
export function takesFd(name: string): boolean {
  return name.startsWith("fd_") || name.startsWith("sock_");
}

export const WASI_FUNCTIONS: readonly string[] = Object.keys(SIGNATURES);
