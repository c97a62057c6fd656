# The Python reference for bench/cases/array-files.ts: numpy opening the same files by mmap,
# timed from before the open to after the first element read, inside the interpreter (its start
# is not counted). Prints one JSON line: { ms, rssAnon, check }.
import json, re, struct, sys, time
import numpy as np

def rss_anon():
    with open('/proc/self/status') as f:
        return int(re.search(r'^RssAnon:\s+(\d+) kB', f.read(), re.M).group(1)) * 1024

how, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
before = rss_anon()
start = time.perf_counter()
if how == 'numpy-npy':
    a = np.load(path, mmap_mode='r')
    check = float(a.reshape(-1)[0])
else:
    # safetensors by mmap, as the safetensors package does it: the header by json, the tensor by np.memmap.
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    begin, end = header[name]['data_offsets']
    a = np.memmap(path, dtype='<f4', mode='r', offset=8 + n + begin, shape=((end - begin) // 4,))
    check = float(a[0])
ms = (time.perf_counter() - start) * 1000
print(json.dumps({'ms': ms, 'rssAnon': rss_anon() - before, 'check': check}))
