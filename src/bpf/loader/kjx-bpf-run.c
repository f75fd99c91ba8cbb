// SPDX-License-Identifier: MIT
/*
 * kjx-bpf-run: kjx's generic loader for a user's BPF CO-RE object (docs/tracing.md,
 * "Your own programs"). Compiled on the host against Debian's libbpf (static) by
 * src/bpf/compile.ts and installed into images that have tracing.programs.
 *
 *   kjx-bpf-run OBJECT.bpf.o     open and load the object, attach every program libbpf
 *                                can attach by its section name, report ready, stream
 *                                ring buffer records, and on SIGINT/SIGTERM write every
 *                                map, then exit 0
 *   kjx-bpf-run --dump-maps PID  write the maps process PID (and its descendants) holds:
 *                                any loader, C or Go, or a service's wrapper
 *
 * Output on stdout, one JSON object per line (line-buffered, so a reader sees each
 * line as it is written):
 *
 *   {"type":"attached","program":P,"section":S}   one per attached program
 *   {"type":"skipped","program":P,"section":S,"error":E}
 *   {"type":"ready"}                              all attachable programs attached
 *   {"type":"event","map":M,"data":HEX}            one ring buffer record
 *   {"type":"maps","btf":{ID:HEX},"maps":[...]}   the maps, keys and values as hex, with
 *                                                 the BTF of their program (the host
 *                                                 renders them through it: src/bpf/btf.ts)
 *
 * Ready is also told the way `ready: signal` services expect (SIGUSR1 to
 * $KJX_NOTIFY_PID) and by touching $KJX_READY_FILE. libbpf's messages, the
 * verifier's log among them, go to stderr.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bounds on what one dump may print: a map of millions of entries is cut, and says so. */
#define MAX_ENTRIES_PER_MAP 65536
#define MAX_MAPS 256

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("KJX_BPF_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void hex(const void *data, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		putchar(digits[p[i] >> 4]);
		putchar(digits[p[i] & 15]);
	}
	putchar('"');
}

static const char *map_type_name(__u32 type)
{
	const char *n = libbpf_bpf_map_type_str((enum bpf_map_type)type);
	return n ? n : "unknown";
}

/* Types whose entries bpf_map_get_next_key + lookup can read. */
static int dumpable(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_STACK_TRACE:
	case BPF_MAP_TYPE_LPM_TRIE:
		return 1;
	default:
		return 0;
	}
}

static int percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static void add_btf_id(__u32 id, __u32 *ids, int *n)
{
	if (!id)
		return;
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < MAX_MAPS)
		ids[(*n)++] = id;
}

/* One map as a JSON object; its BTF id goes into `btf_ids`. */
static void dump_map(int fd, int first, __u32 *btf_ids, int *n_btf)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	add_btf_id(info.btf_id, btf_ids, n_btf);
	if (!first)
		putchar(',');
	printf("{\"name\":");
	json_string(info.name);
	printf(",\"id\":%u,\"type\":\"%s\",\"key_size\":%u,\"value_size\":%u,\"max_entries\":%u,"
	       "\"btf_id\":%u,\"btf_key_type_id\":%u,\"btf_value_type_id\":%u",
	       info.id, map_type_name(info.type), info.key_size, info.value_size, info.max_entries,
	       info.btf_id, info.btf_key_type_id, info.btf_value_type_id);
	if (!dumpable(info.type)) {
		printf(",\"entries\":null}");
		return;
	}
	int cpus = percpu(info.type) ? libbpf_num_possible_cpus() : 1;
	if (cpus < 1)
		cpus = 1;
	size_t vsize = percpu(info.type) ? (size_t)((info.value_size + 7) / 8 * 8) * cpus : info.value_size;
	if (percpu(info.type))
		printf(",\"cpus\":%d", cpus);
	void *key = calloc(1, info.key_size ? info.key_size : 1);
	void *next = calloc(1, info.key_size ? info.key_size : 1);
	void *value = calloc(1, vsize ? vsize : 1);
	printf(",\"entries\":[");
	int n = 0, truncated = 0;
	void *prev = NULL;
	while (key && next && value && bpf_map_get_next_key(fd, prev, next) == 0) {
		if (n == MAX_ENTRIES_PER_MAP) {
			truncated = 1;
			break;
		}
		memcpy(key, next, info.key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, value))
			continue; /* deleted meanwhile, or an empty stack slot */
		printf("%s[", n ? "," : "");
		hex(key, info.key_size);
		putchar(',');
		hex(value, vsize);
		putchar(']');
		n++;
	}
	printf("],\"truncated\":%s}", truncated ? "true" : "false");
	free(key);
	free(next);
	free(value);
}

/*
 * The "maps" line: the maps behind `maps`, then the BTF they and the programs behind
 * `progs` name (a program's BTF holds the types of its ring buffer records too).
 */
static void dump_maps(const int *maps, int n_maps, const int *progs, int n_progs)
{
	__u32 btf_ids[MAX_MAPS];
	int n_btf = 0;
	printf("{\"type\":\"maps\",\"maps\":[");
	for (int i = 0; i < n_maps; i++)
		dump_map(maps[i], i == 0, btf_ids, &n_btf);
	for (int i = 0; i < n_progs; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(progs[i], &info, &len) == 0)
			add_btf_id(info.btf_id, btf_ids, &n_btf);
	}
	printf("],\"btf\":{");
	int first = 1;
	for (int i = 0; i < n_btf; i++) {
		struct btf *btf = btf__load_from_kernel_by_id(btf_ids[i]);
		if (!btf)
			continue;
		__u32 size = 0;
		const void *raw = btf__raw_data(btf, &size);
		if (raw) {
			printf("%s\"%u\":", first ? "" : ",", btf_ids[i]);
			hex(raw, size);
			first = 0;
		}
		btf__free(btf);
	}
	printf("}}\n");
	fflush(stdout);
}

/* Add the object `id` once to ids/fds (a map or a program, opened by id). */
static void add_by_id(__u32 id, __u32 *ids, int *fds, int *n, int (*open_id)(__u32))
{
	for (int i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n >= MAX_MAPS)
		return;
	int fd = open_id(id);
	if (fd < 0)
		return;
	ids[*n] = id;
	fds[(*n)++] = fd;
}

/* The parent pid in /proc/PID/stat (after the command name, which may hold spaces). */
static long parent_of(const char *pid)
{
	char path[300], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *close = strrchr(buf, ')');
	long ppid = -1;
	if (!close || sscanf(close + 1, " %*c %ld", &ppid) != 1)
		return -1;
	return ppid;
}

/* PID and its descendants (a service's wrapper shell and the loader under it). */
static int process_tree(long root, long *pids, int max)
{
	int n = 0;
	pids[n++] = root;
	for (int grew = 1; grew && n < max;) {
		grew = 0;
		DIR *d = opendir("/proc");
		if (!d)
			break;
		struct dirent *de;
		while ((de = readdir(d)) && n < max) {
			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			long pid = atol(de->d_name), ppid = parent_of(de->d_name);
			int known = 0, parent_known = 0;
			for (int i = 0; i < n; i++) {
				known |= pids[i] == pid;
				parent_known |= pids[i] == ppid;
			}
			if (!known && parent_known) {
				pids[n++] = pid;
				grew = 1;
			}
		}
		closedir(d);
	}
	return n;
}

/*
 * --dump-maps PID: the maps that PID and its descendants hold, and their programs
 * (for the BTF), found through /proc/PID/fdinfo, which names map and program ids.
 */
static int dump_maps_of(const char *arg)
{
	long root = atol(arg);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/fdinfo", root);
	if (root <= 0 || access(path, R_OK)) {
		fprintf(stderr, "kjx-bpf-run: cannot read %s: %s\n", path, root <= 0 ? "not a pid" : strerror(errno));
		return 1;
	}
	long pids[64];
	int n_pids = process_tree(root, pids, 64);
	__u32 map_ids[MAX_MAPS], prog_ids[MAX_MAPS];
	int maps[MAX_MAPS], progs[MAX_MAPS], n_maps = 0, n_progs = 0;
	for (int p = 0; p < n_pids; p++) {
		snprintf(path, sizeof(path), "/proc/%ld/fdinfo", pids[p]);
		DIR *d = opendir(path);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			char file[512], line[256];
			if (de->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
			FILE *f = fopen(file, "r");
			if (!f)
				continue;
			unsigned id;
			while (fgets(line, sizeof(line), f)) {
				if (sscanf(line, "map_id: %u", &id) == 1)
					add_by_id(id, map_ids, maps, &n_maps, bpf_map_get_fd_by_id);
				else if (sscanf(line, "prog_id: %u", &id) == 1)
					add_by_id(id, prog_ids, progs, &n_progs, bpf_prog_get_fd_by_id);
			}
			fclose(f);
		}
		closedir(d);
	}
	dump_maps(maps, n_maps, progs, n_progs);
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	printf("{\"type\":\"event\",\"map\":");
	json_string((const char *)ctx);
	printf(",\"data\":");
	hex(data, size);
	printf("}\n");
	return 0;
}

static void notify_ready(void)
{
	const char *pid = getenv("KJX_NOTIFY_PID");
	const char *file = getenv("KJX_READY_FILE");
	printf("{\"type\":\"ready\"}\n");
	fflush(stdout);
	if (pid && *pid)
		kill((pid_t)atoi(pid), SIGUSR1);
	if (file && *file) {
		int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
}

static int run(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "kjx-bpf-run: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "kjx-bpf-run: loading %s failed: %s\n", path, strerror(errno));
		bpf_object__close(obj);
		return 1;
	}
	struct bpf_program *prog;
	int attached = 0;
	bpf_object__for_each_program(prog, obj)
	{
		if (!bpf_program__autoload(prog))
			continue;
		struct bpf_link *link = bpf_program__attach(prog);
		printf("{\"type\":\"%s\",\"program\":", link ? "attached" : "skipped");
		json_string(bpf_program__name(prog));
		printf(",\"section\":");
		json_string(bpf_program__section_name(prog));
		if (!link) {
			printf(",\"error\":");
			json_string(strerror(errno));
		}
		printf("}\n");
		attached += link != NULL;
	}
	if (!attached) {
		fprintf(stderr, "kjx-bpf-run: %s: no program could be attached (see the section names: "
				"tracepoint/..., kprobe/..., fentry/..., tp_btf/..., raw_tp/...)\n",
			path);
		bpf_object__close(obj);
		return 1;
	}
	struct ring_buffer *rb = NULL;
	struct bpf_map *map;
	bpf_object__for_each_map(map, obj)
	{
		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF)
			continue;
		void *name = (void *)bpf_map__name(map);
		int err = rb ? ring_buffer__add(rb, bpf_map__fd(map), on_record, name) : 0;
		if (!rb)
			rb = ring_buffer__new(bpf_map__fd(map), on_record, name, NULL);
		if (!rb || err) {
			fprintf(stderr, "kjx-bpf-run: cannot read ring buffer %s: %s\n", bpf_map__name(map),
				strerror(errno));
			bpf_object__close(obj);
			return 1;
		}
	}
	notify_ready();

	if (rb) {
		/* a stop signal ends the wait with EINTR; one that comes just before it is
		 * seen at the next timeout */
		while (!stopping) {
			int err = ring_buffer__poll(rb, 200);
			if (err < 0 && err != -EINTR) {
				fprintf(stderr, "kjx-bpf-run: ring buffer: %s\n", strerror(-err));
				break;
			}
		}
	} else {
		/* blocked between the check and the wait, so no stop signal is lost */
		sigset_t stop, old;
		sigemptyset(&stop);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGTERM);
		sigprocmask(SIG_BLOCK, &stop, &old);
		while (!stopping)
			sigsuspend(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (rb) {
		ring_buffer__consume(rb);
		ring_buffer__free(rb);
	}
	int maps[MAX_MAPS], progs[MAX_MAPS], n_maps = 0, n_progs = 0;
	bpf_object__for_each_map(map, obj) if (n_maps < MAX_MAPS && bpf_map__fd(map) >= 0) maps[n_maps++] =
		bpf_map__fd(map);
	bpf_object__for_each_program(prog, obj) if (n_progs < MAX_MAPS && bpf_program__fd(prog) >= 0)
		progs[n_progs++] = bpf_program__fd(prog);
	dump_maps(maps, n_maps, progs, n_progs);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);
	if (argc == 3 && strcmp(argv[1], "--dump-maps") == 0)
		return dump_maps_of(argv[2]);
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: kjx-bpf-run OBJECT.bpf.o | kjx-bpf-run --dump-maps PID\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return run(argv[1]);
}
