"""Print every .gcda file under a directory, read whole (run by a guest's python3 from stdin;
python3-minimal is enough). Usage: python3 - ROOT

debugfs reports a size of 0 for the kernel's gcov files, so tools that trust the size (tar,
cp --sparse) copy nothing: each file is read until end of file instead. Output: one line per
file, "<absolute path>\t<base64 of the content>", then "# files <count>".
"""

import base64
import os
import sys

root = sys.argv[1]
count = 0
for top, _dirs, names in os.walk(root):
    for name in sorted(names):
        path = os.path.join(top, name)
        if not name.endswith(".gcda") or os.path.islink(path) or "\t" in path or "\n" in path:
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        sys.stdout.write(path + "\t" + base64.b64encode(data).decode("ascii") + "\n")
        count += 1
sys.stdout.write(f"# files {count}\n")
