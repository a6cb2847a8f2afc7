// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * jool_kcov: KCOV-style coverage for kernels built without it, for modules
 * built with -fsanitize-coverage=trace-pc (jool-stats-harness,
 * `jool-harness fuzz-kernel`).
 *
 * Debian's kernels have no CONFIG_KCOV, so a module compiled with
 * `-fsanitize-coverage=trace-pc` calls a `__sanitizer_cov_trace_pc()`
 * that nothing provides. This module provides it and exposes what it
 * records through /dev/jool_kcov, with plain write(2) and read(2) (the
 * fuzzer is safe Rust: no mmap, no ioctl):
 *
 *   fd = open("/dev/jool_kcov", O_RDWR);
 *   write(fd, "trace 65536", 11);   this task is traced, 65536 PCs max
 *   ...syscalls...
 *   read(fd, buf, len);             the PCs since the last read, as
 *                                   native 64-bit words; starts over
 *   write(fd, "off", 3);            (or close) stops tracing
 *
 * Only one task is traced at a time (the fuzzer), and only the code of
 * instrumented modules reports anything. Interrupt context is ignored,
 * as Linux's KCOV does. The file is not seekable (nonseekable_open; no
 * .llseek, since 6.12 has no no_llseek). Builds on 6.1 and 6.12.
 *
 * Global mode collects every PC any task or context reaches into a set,
 * for coverage reports of whole test suites: write '1' to
 * /sys/module/jool_kcov/parameters/global, run the tests, then read(2) a
 * file descriptor that does not trace: the set's slots as 64-bit words,
 * 0 for empty. write(fd, "clear", 5) empties the set.
 *
 * Our own code; the license string tells the kernel it is GPL-compatible
 * (MIT permits it).
 */
#include <linux/fs.h>
#include <linux/hash.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

/* Largest trace buffer: 4 Mi entries (32 MiB); entry 0 is the count. */
#define JKCOV_MAX_ENTRIES (4UL << 20)

/* Global set: 2^16 slots, linear probing over at most 32 of them. */
#define JKCOV_SET_BITS 16
#define JKCOV_SET_SIZE (1UL << JKCOV_SET_BITS)
#define JKCOV_SET_PROBES 32

static bool global;
module_param(global, bool, 0644);
MODULE_PARM_DESC(global, "Collect every PC of every context into the set read(2) returns");

/* The traced task, its buffer and its size in entries (one at a time). */
static struct task_struct *trace_task;
static unsigned long *trace_area;
static unsigned long trace_size;

/* The one open file that owns the buffer, under `lock`. */
static DEFINE_MUTEX(lock);
static struct file *owner;
static unsigned long *owner_area;
static unsigned long owner_size;

static unsigned long *set;
static atomic_t set_dropped = ATOMIC_INIT(0);

static void notrace set_add(unsigned long ip)
{
	unsigned long h = hash_long(ip, JKCOV_SET_BITS);
	unsigned int i;

	for (i = 0; i < JKCOV_SET_PROBES; i++) {
		unsigned long *slot = &set[(h + i) & (JKCOV_SET_SIZE - 1)];
		unsigned long old = READ_ONCE(*slot);

		if (old == ip)
			return;
		if (old == 0 && cmpxchg(slot, 0, ip) == 0)
			return;
		if (READ_ONCE(*slot) == ip)
			return;
	}
	atomic_inc(&set_dropped);
}

/* Called by every basic block of -fsanitize-coverage=trace-pc objects. */
void __sanitizer_cov_trace_pc(void);

void notrace __sanitizer_cov_trace_pc(void)
{
	unsigned long ip = _RET_IP_;
	unsigned long *area;
	unsigned long pos;

	if (unlikely(READ_ONCE(global)) && set)
		set_add(ip);
	if (READ_ONCE(trace_task) != current || !in_task())
		return;
	area = READ_ONCE(trace_area);
	/* Pairs with the barrier in enable: area is set before the task. */
	barrier();
	pos = READ_ONCE(area[0]) + 1;
	if (likely(pos < READ_ONCE(trace_size))) {
		area[pos] = ip;
		WRITE_ONCE(area[0], pos);
	}
}
EXPORT_SYMBOL(__sanitizer_cov_trace_pc);

static int jkcov_open(struct inode *inode, struct file *f)
{
	return nonseekable_open(inode, f);
}

/* Under `lock`. */
static void stop_tracing(void)
{
	WRITE_ONCE(trace_task, NULL);
	/* No new caller sees the task; let running ones finish. */
	synchronize_rcu();
	WRITE_ONCE(trace_area, NULL);
	WRITE_ONCE(trace_size, 0);
}

/* Under `lock`: forgets the buffer of `owner`. */
static void drop_owner(void)
{
	struct task_struct *t = trace_task;

	stop_tracing();
	/*
	 * Closed by another task while the traced one lives: it may be inside
	 * __sanitizer_cov_trace_pc() right now, so the buffer is leaked rather
	 * than freed under it.
	 */
	if (t && t != current)
		pr_warn("jool_kcov: closed while another task was traced; buffer leaked\n");
	else
		vfree(owner_area);
	owner = NULL;
	owner_area = NULL;
	owner_size = 0;
}

static int jkcov_release(struct inode *inode, struct file *f)
{
	mutex_lock(&lock);
	if (owner == f)
		drop_owner();
	mutex_unlock(&lock);
	return 0;
}

/* "trace N": this file traces the calling task into N - 1 entries. */
static long jkcov_trace(struct file *f, unsigned long entries)
{
	if (owner || trace_task)
		return -EBUSY;
	if (entries < 2 || entries > JKCOV_MAX_ENTRIES)
		return -EINVAL;
	owner_area = vzalloc(entries * sizeof(unsigned long));
	if (!owner_area)
		return -ENOMEM;
	owner = f;
	owner_size = entries;
	WRITE_ONCE(trace_area, owner_area);
	WRITE_ONCE(trace_size, owner_size);
	/* Pairs with the barrier in __sanitizer_cov_trace_pc(). */
	barrier();
	WRITE_ONCE(trace_task, current);
	return 0;
}

static ssize_t jkcov_write(struct file *f, const char __user *ubuf,
			   size_t len, loff_t *ppos)
{
	char buf[32];
	unsigned long n;
	long ret;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	strim(buf);
	mutex_lock(&lock);
	if (strncmp(buf, "trace ", 6) == 0) {
		ret = kstrtoul(buf + 6, 10, &n);
		if (!ret)
			ret = jkcov_trace(f, n);
	} else if (strcmp(buf, "off") == 0) {
		ret = owner == f ? (drop_owner(), 0) : -EINVAL;
	} else if (strcmp(buf, "clear") == 0) {
		memset(set, 0, JKCOV_SET_SIZE * sizeof(unsigned long));
		atomic_set(&set_dropped, 0);
		ret = 0;
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&lock);
	return ret ? ret : len;
}

/* The traced PCs since the last read; the count starts over. */
static ssize_t read_trace(char __user *buf, size_t len)
{
	unsigned long n = READ_ONCE(owner_area[0]);

	n = min_t(unsigned long, n, len / sizeof(unsigned long));
	if (copy_to_user(buf, &owner_area[1], n * sizeof(unsigned long)))
		return -EFAULT;
	WRITE_ONCE(owner_area[0], 0);
	return n * sizeof(unsigned long);
}

/* The global set's slots, as they are (racy with writers: a snapshot). */
static ssize_t read_set(char __user *buf, size_t len, loff_t *ppos)
{
	size_t total = JKCOV_SET_SIZE * sizeof(unsigned long);

	if (*ppos >= total)
		return 0;
	len = min_t(size_t, len, total - *ppos);
	if (copy_to_user(buf, (char *)set + *ppos, len))
		return -EFAULT;
	*ppos += len;
	return len;
}

static ssize_t jkcov_read(struct file *f, char __user *buf, size_t len,
			  loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&lock);
	ret = owner == f ? read_trace(buf, len) : read_set(buf, len, ppos);
	mutex_unlock(&lock);
	return ret;
}

static const struct file_operations jkcov_fops = {
	.owner = THIS_MODULE,
	.open = jkcov_open,
	.release = jkcov_release,
	.read = jkcov_read,
	.write = jkcov_write,
};

static struct miscdevice jkcov_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "jool_kcov",
	.fops = &jkcov_fops,
	.mode = 0600,
};

static int __init jkcov_init(void)
{
	int ret;

	set = vzalloc(JKCOV_SET_SIZE * sizeof(unsigned long));
	if (!set)
		return -ENOMEM;
	ret = misc_register(&jkcov_dev);
	if (ret)
		vfree(set);
	return ret;
}

static void __exit jkcov_exit(void)
{
	misc_deregister(&jkcov_dev);
	if (atomic_read(&set_dropped))
		pr_info("jool_kcov: %d PCs did not fit the global set\n",
			atomic_read(&set_dropped));
	vfree(set);
}

module_init(jkcov_init);
module_exit(jkcov_exit);
MODULE_DESCRIPTION("KCOV-compatible coverage for -fsanitize-coverage=trace-pc modules");
MODULE_LICENSE("Dual MIT/GPL");
