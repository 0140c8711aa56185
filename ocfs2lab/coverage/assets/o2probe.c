/*
 * o2probe: a small I/O checker of the ocfs2lab project, built with gcov into the lab image
 * and the node image so the tools' coverage path runs for real.
 *
 *   o2probe write  FILE BLOCKS   write BLOCKS blocks of 4 KiB with a pattern, then fsync
 *   o2probe verify FILE BLOCKS   read them back and check the pattern
 *   o2probe statfs DIR           print the file system type of DIR (ocfs2 or other)
 *
 * Exit status: 0 done, 1 a check failed, 2 bad usage or an I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define BLOCK 4096
#define OCFS2_SUPER_MAGIC 0x7461636fL

static void fill(unsigned char *buf, long block)
{
	for (int i = 0; i < BLOCK; i++)
		buf[i] = (unsigned char)((block * 31 + i) & 0xff);
}

static long parse_blocks(const char *text)
{
	char *end = NULL;
	long blocks = strtol(text, &end, 10);

	if (end == text || *end != '\0' || blocks < 1 || blocks > 1L << 20) {
		fprintf(stderr, "o2probe: BLOCKS must be 1..1048576, not %s\n", text);
		return -1;
	}
	return blocks;
}

static int do_write(const char *path, long blocks)
{
	unsigned char buf[BLOCK];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0) {
		fprintf(stderr, "o2probe: open %s: %s\n", path, strerror(errno));
		return 2;
	}
	for (long b = 0; b < blocks; b++) {
		fill(buf, b);
		if (write(fd, buf, BLOCK) != BLOCK) {
			fprintf(stderr, "o2probe: write %s: %s\n", path, strerror(errno));
			close(fd);
			return 2;
		}
	}
	if (fsync(fd) != 0) {
		fprintf(stderr, "o2probe: fsync %s: %s\n", path, strerror(errno));
		close(fd);
		return 2;
	}
	close(fd);
	printf("wrote %ld blocks to %s\n", blocks, path);
	return 0;
}

static int do_verify(const char *path, long blocks)
{
	unsigned char want[BLOCK], got[BLOCK];
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		fprintf(stderr, "o2probe: open %s: %s\n", path, strerror(errno));
		return 2;
	}
	for (long b = 0; b < blocks; b++) {
		fill(want, b);
		if (read(fd, got, BLOCK) != BLOCK) {
			fprintf(stderr, "o2probe: %s: short read at block %ld\n", path, b);
			close(fd);
			return 1;
		}
		if (memcmp(want, got, BLOCK) != 0) {
			fprintf(stderr, "o2probe: %s: block %ld differs\n", path, b);
			close(fd);
			return 1;
		}
	}
	close(fd);
	printf("verified %ld blocks of %s\n", blocks, path);
	return 0;
}

static int do_statfs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st) != 0) {
		fprintf(stderr, "o2probe: statfs %s: %s\n", path, strerror(errno));
		return 2;
	}
	if ((long)st.f_type == OCFS2_SUPER_MAGIC) {
		printf("%s: ocfs2, %ld blocks of %ld bytes\n", path, (long)st.f_blocks,
		       (long)st.f_bsize);
		return 0;
	}
	printf("%s: not ocfs2 (type 0x%lx)\n", path, (long)st.f_type);
	return 1;
}

int main(int argc, char **argv)
{
	long blocks;

	if (argc == 4 && strcmp(argv[1], "write") == 0) {
		blocks = parse_blocks(argv[3]);
		return blocks < 0 ? 2 : do_write(argv[2], blocks);
	}
	if (argc == 4 && strcmp(argv[1], "verify") == 0) {
		blocks = parse_blocks(argv[3]);
		return blocks < 0 ? 2 : do_verify(argv[2], blocks);
	}
	if (argc == 3 && strcmp(argv[1], "statfs") == 0)
		return do_statfs(argv[2]);
	fprintf(stderr, "usage: o2probe write|verify FILE BLOCKS | o2probe statfs DIR\n");
	return 2;
}
