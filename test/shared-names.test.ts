/**
 * Shared names and other users: create() never adopts an object another user planted under
 * the name (the squatting attack in /dev/shm), the mode asked for is the mode a new object
 * gets whatever the umask, and open() says whose object it opened.
 *
 * Root ignores permission bits, so the victim and the attacker run as child processes that
 * load memmap and then drop to other uids; this (root) process plays the planter.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NamedSemaphore, SharedMemory } from '../src/index.js';
import { assertExitedCleanly, assertThrowsCode, runModule, tempDir } from './helpers/index.js';

const asRoot = process.getuid?.() === 0;
const needsRoot = asRoot ? false : 'needs root, to run the victim and the attacker as other users';
const NOBODY = 65534;
/** A second unprivileged uid for the attacker; it needs no entry in /etc/passwd. */
const OTHER = 65533;
const dir = tempDir();

function newName(): string {
  return `/memmap-names-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Removes whatever `path` in /dev/shm is (object, semaphore file, link or FIFO). */
function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

function shmFile(name: string): string {
  return `/dev/shm${name}`;
}

function semFile(name: string): string {
  return `/dev/shm/sem.${name.slice(1)}`;
}

/**
 * Runs `body` in a child that loads memmap, sets its umask (if given) and becomes `uid`.
 * `body` fills `out`; `codeOf(fn)` runs fn and gives 'ok' (closing what it returned) or the
 * error's code, and `errorOf(fn)` the code and message.
 */
async function runAs(
  uid: number,
  body: string,
  env: Record<string, string>,
  umask?: number,
): Promise<Record<string, unknown>> {
  const child = await runModule(
    `
    const { SharedMemory, NamedSemaphore } = await import(process.env.MEMMAP);
    ${umask === undefined ? '' : `process.umask(${umask});`}
    process.setgid(${uid});
    process.setuid(${uid});
    const out = {};
    const codeOf = (fn) => { try { const r = fn(); r?.close?.(); return 'ok'; } catch (e) { return e.code ?? String(e); } };
    const errorOf = (fn) => { try { fn()?.close?.(); return { code: 'ok' }; } catch (e) { return { code: e.code, message: e.message }; } };
    ${body}
    process.stdout.write(JSON.stringify(out));
    `,
    env,
  );
  assertExitedCleanly(child);
  return JSON.parse(child.stdout) as Record<string, unknown>;
}

describe('shared names: an object another user planted is never adopted', () => {
  it('SharedMemory: planted world-writable by root, the victim (nobody) is refused with ERR_MEMMAP_UNSAFE_OBJECT', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    try {
      using planted = SharedMemory.create(name, 4096, { exclusive: true, mode: 0o666 });
      assert.equal(statSync(shmFile(name)).mode & 0o777, 0o666);
      const out = await runAs(
        NOBODY,
        `
        out.create = errorOf(() => SharedMemory.create(process.env.NAME, 4096, { mode: 0o600 }));
        out.createWide = errorOf(() => SharedMemory.create(process.env.NAME, 4096, { mode: 0o666 }));
        // Deliberate sharing: the owner is trusted by uid, and the mode asked for admits it.
        const shared = SharedMemory.create(process.env.NAME, 4096, { mode: 0o666, trustOwner: 0 });
        out.trusted = shared.info();
        shared.buffer.write('victim');
        shared.close();
        out.trustedNarrow = codeOf(() => SharedMemory.create(process.env.NAME, 4096, { trustOwner: 0 }));
        const opened = SharedMemory.open(process.env.NAME);
        out.opened = opened.info();
        opened.close();
        `,
        { NAME: name },
      );
      const create = out.create as { code: string; message: string };
      assert.equal(create.code, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.match(create.message, /owned by uid 0\b/);
      assert.match(create.message, /mode 0o666/);
      assert.match(create.message, /exclusive: true/);
      assert.match(create.message, /trustOwner: 0\b/);
      assert.equal((out.createWide as { code: string }).code, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.deepEqual(out.trusted, { uid: 0, gid: 0, mode: 0o666, created: false });
      assert.equal(out.trustedNarrow, 'ERR_MEMMAP_UNSAFE_OBJECT', 'a trusted owner does not widen the mode');
      assert.deepEqual(out.opened, { uid: 0, gid: 0, mode: 0o666, created: false });
      assert.equal(planted.buffer.toString('latin1', 0, 6), 'victim');
    } finally {
      removeFile(shmFile(name));
    }
  });

  it('SharedMemory: planted by nobody, this (root) process is refused too; and an own object more open than asked', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    const own = newName();
    try {
      const out = await runAs(
        NOBODY,
        'SharedMemory.create(process.env.NAME, 4096, { exclusive: true, mode: 0o666 }).close();',
        {
          NAME: name,
        },
      );
      assert.deepEqual(out, {});
      assertThrowsCode(() => SharedMemory.create(name, 4096), 'ERR_MEMMAP_UNSAFE_OBJECT');
      assertThrowsCode(() => SharedMemory.create(name, 4096, { mode: 0o666 }), 'ERR_MEMMAP_UNSAFE_OBJECT');
      using adopted = SharedMemory.create(name, 4096, { mode: 0o666, trustOwner: NOBODY });
      assert.equal(adopted.info().uid, NOBODY);
      // This user's own object, but open to others: refused unless the mode asked admits it.
      using mine = SharedMemory.create(own, 4096, { exclusive: true, mode: 0o644 });
      assertThrowsCode(() => SharedMemory.create(own, 4096), 'ERR_MEMMAP_UNSAFE_OBJECT');
      using again = SharedMemory.create(own, 4096, { mode: 0o644 });
      assert.deepEqual(again.info(), { uid: 0, gid: 0, mode: 0o644, created: false });
      assert.deepEqual(mine.info(), { uid: 0, gid: 0, mode: 0o644, created: true });
    } finally {
      removeFile(shmFile(name));
      removeFile(shmFile(own));
    }
  });

  it('SharedMemory: created first by the victim (nobody), the attacker (another uid) cannot open or adopt it', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    try {
      const victim = await runAs(
        NOBODY,
        `
        const shm = SharedMemory.create(process.env.NAME, 4096);
        shm.buffer.write('secret token');
        out.info = shm.info();
        shm.close();
        `,
        { NAME: name },
      );
      assert.deepEqual(victim.info, { uid: NOBODY, gid: NOBODY, mode: 0o600, created: true });
      const attacker = await runAs(
        OTHER,
        `
        out.open = codeOf(() => SharedMemory.open(process.env.NAME));
        out.openRead = codeOf(() => SharedMemory.open(process.env.NAME, { readOnly: true }));
        out.create = codeOf(() => SharedMemory.create(process.env.NAME, 4096, { mode: 0o666 }));
        out.trusted = codeOf(() => SharedMemory.create(process.env.NAME, 4096, { trustOwner: ${NOBODY} }));
        `,
        { NAME: name },
      );
      assert.deepEqual(attacker, {
        open: 'EACCES',
        openRead: 'EACCES',
        create: 'ERR_MEMMAP_UNSAFE_OBJECT',
        trusted: 'EACCES',
      });
      const stat = statSync(shmFile(name));
      assert.equal(stat.mode & 0o777, 0o600);
      assert.equal(stat.uid, NOBODY);
    } finally {
      removeFile(shmFile(name));
    }
  });

  it('SharedMemory: a symbolic link, a FIFO or a folder planted under the name is refused, never followed or blocked on', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    const fifo = newName();
    const folder = newName();
    const target = join(dir, 'target');
    writeFileSync(target, 'not to be touched');
    try {
      symlinkSync(target, shmFile(name));
      const error = (() => {
        try {
          SharedMemory.create(name, 4096);
        } catch (e) {
          return e as { code: string; message: string };
        }
        return null;
      })();
      assert.equal(error?.code, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.match(error?.message ?? '', /symbolic link/);
      assertThrowsCode(() => SharedMemory.open(name), 'ELOOP');
      assertThrowsCode(() => SharedMemory.open(name, { readOnly: true }), 'ELOOP');
      // As the victim too (nobody), where the link belongs to another user (root).
      const out = await runAs(NOBODY, 'out.create = codeOf(() => SharedMemory.create(process.env.NAME, 4096));', {
        NAME: name,
      });
      assert.equal(out.create, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.equal(statSync(target).size, 'not to be touched'.length);
      assert.ok(lstatSync(shmFile(name)).isSymbolicLink());

      execFileSync('mkfifo', ['-m', '0666', shmFile(fifo)]);
      assertThrowsCode(() => SharedMemory.create(fifo, 4096, { mode: 0o666 }), 'ERR_MEMMAP_UNSAFE_OBJECT');
      assertThrowsCode(() => SharedMemory.open(fifo, { readOnly: true }), 'ENODEV');
      assertThrowsCode(() => SharedMemory.open(fifo), 'ENODEV');

      mkdirSync(shmFile(folder), 0o777);
      assertThrowsCode(() => SharedMemory.create(folder, 4096, { mode: 0o777 }), 'ERR_MEMMAP_UNSAFE_OBJECT');
    } finally {
      removeFile(shmFile(name));
      removeFile(shmFile(fifo));
      try {
        rmdirSync(shmFile(folder));
      } catch {}
    }
  });
});

describe('shared names: NamedSemaphore', () => {
  it('planted world-writable by root with a count of 5, the victim (nobody) is refused with ERR_MEMMAP_UNSAFE_OBJECT', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    try {
      using planted = NamedSemaphore.create(name, 5, { exclusive: true, mode: 0o666 });
      assert.equal(statSync(semFile(name)).mode & 0o777, 0o666);
      const out = await runAs(
        NOBODY,
        `
        out.create = errorOf(() => NamedSemaphore.create(process.env.NAME, 0));
        out.createWide = codeOf(() => NamedSemaphore.create(process.env.NAME, 0, { mode: 0o666 }));
        const shared = NamedSemaphore.create(process.env.NAME, 0, { mode: 0o666, trustOwner: 0 });
        out.trusted = shared.info();
        out.value = shared.value;
        shared.close();
        const opened = NamedSemaphore.open(process.env.NAME);
        out.opened = opened.info();
        opened.close();
        `,
        { NAME: name },
      );
      const create = out.create as { code: string; message: string };
      assert.equal(create.code, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.match(create.message, /owned by uid 0\b/);
      assert.match(create.message, /mode 0o666/);
      assert.match(create.message, /trustOwner: 0\b/);
      assert.equal(out.createWide, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.deepEqual(out.trusted, { uid: 0, gid: 0, mode: 0o666, created: false });
      assert.equal(out.value, 5);
      assert.deepEqual(out.opened, { uid: 0, gid: 0, mode: 0o666, created: false });
      assert.equal(planted.value, 5);
    } finally {
      removeFile(semFile(name));
    }
  });

  it('planted by nobody, this (root) process is refused; an own semaphore is adopted', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    const own = newName();
    try {
      await runAs(NOBODY, 'NamedSemaphore.create(process.env.NAME, 5, { exclusive: true, mode: 0o666 }).close();', {
        NAME: name,
      });
      assertThrowsCode(() => NamedSemaphore.create(name, 0), 'ERR_MEMMAP_UNSAFE_OBJECT');
      using adopted = NamedSemaphore.create(name, 0, { mode: 0o666, trustOwner: NOBODY });
      assert.equal(adopted.info().uid, NOBODY);
      assert.equal(adopted.value, 5);
      using mine = NamedSemaphore.create(own, 2);
      assert.deepEqual(mine.info(), { uid: 0, gid: 0, mode: 0o600, created: true });
      using again = NamedSemaphore.create(own, 0);
      assert.deepEqual(again.info(), { uid: 0, gid: 0, mode: 0o600, created: false });
      assert.equal(again.value, 2);
    } finally {
      removeFile(semFile(name));
      removeFile(semFile(own));
    }
  });

  it('created first by the victim (nobody), the attacker (another uid) cannot open or adopt it', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    try {
      const victim = await runAs(
        NOBODY,
        'const sem = NamedSemaphore.create(process.env.NAME, 0); out.info = sem.info(); sem.close();',
        { NAME: name },
      );
      assert.deepEqual(victim.info, { uid: NOBODY, gid: NOBODY, mode: 0o600, created: true });
      const attacker = await runAs(
        OTHER,
        `
        out.open = codeOf(() => NamedSemaphore.open(process.env.NAME));
        out.create = codeOf(() => NamedSemaphore.create(process.env.NAME, 0, { mode: 0o666 }));
        out.trusted = codeOf(() => NamedSemaphore.create(process.env.NAME, 0, { trustOwner: ${NOBODY} }));
        `,
        { NAME: name },
      );
      assert.deepEqual(attacker, { open: 'EACCES', create: 'ERR_MEMMAP_UNSAFE_OBJECT', trusted: 'EACCES' });
      const stat = statSync(semFile(name));
      assert.equal(stat.mode & 0o777, 0o600);
      assert.equal(stat.uid, NOBODY);
    } finally {
      removeFile(semFile(name));
    }
  });

  it('a symbolic link, a folder, or a file too short to hold a semaphore, planted under the name is refused', async (t) => {
    if (needsRoot) return t.skip(needsRoot);
    const name = newName();
    const real = newName();
    const short = newName();
    const folder = newName();
    try {
      using target = NamedSemaphore.create(real, 3, { exclusive: true, mode: 0o666 });
      symlinkSync(semFile(real), semFile(name));
      assertThrowsCode(() => NamedSemaphore.create(name, 0, { mode: 0o666 }), 'ERR_MEMMAP_UNSAFE_OBJECT');
      assertThrowsCode(() => NamedSemaphore.open(name), 'ERR_MEMMAP_UNSAFE_OBJECT');
      const out = await runAs(NOBODY, 'out.create = codeOf(() => NamedSemaphore.create(process.env.NAME, 0));', {
        NAME: name,
      });
      assert.equal(out.create, 'ERR_MEMMAP_UNSAFE_OBJECT');
      assert.equal(target.value, 3);
      // An empty file would be mapped as a semaphore and fault at the first post.
      closeSync(openSync(semFile(short), 'w', 0o600));
      assertThrowsCode(() => NamedSemaphore.open(short), 'ERR_MEMMAP_UNSAFE_OBJECT');
      assertThrowsCode(() => NamedSemaphore.create(short, 0), 'ERR_MEMMAP_UNSAFE_OBJECT');
      mkdirSync(semFile(folder), 0o777);
      assertThrowsCode(() => NamedSemaphore.open(folder), 'ERR_MEMMAP_UNSAFE_OBJECT');
      assertThrowsCode(() => NamedSemaphore.create(folder, 0, { mode: 0o777 }), 'ERR_MEMMAP_UNSAFE_OBJECT');
    } finally {
      removeFile(semFile(name));
      removeFile(semFile(real));
      removeFile(semFile(short));
      try {
        rmdirSync(semFile(folder));
      } catch {}
    }
  });
});

describe('shared names: the mode asked for, whatever the umask', () => {
  for (const umask of [0o077, 0o000]) {
    it(`under a umask of 0o${umask.toString(8).padStart(3, '0')}: SharedMemory and NamedSemaphore get exactly their mode`, async (t) => {
      if (needsRoot) return t.skip(needsRoot);
      const names = [newName(), newName(), newName(), newName()];
      try {
        const out = await runAs(
          NOBODY,
          `
          const [a, b, c, d] = JSON.parse(process.env.NAMES);
          for (const [name, mode] of [[a, 0o640], [b, 0o600]]) {
            const shm = SharedMemory.create(name, 4096, { mode, exclusive: name === a });
            out[name] = shm.info().mode;
            shm.close();
          }
          for (const [name, mode] of [[c, 0o640], [d, 0o600]]) {
            const sem = NamedSemaphore.create(name, 0, { mode, exclusive: name === c });
            out[name] = sem.info().mode;
            sem.close();
          }
          `,
          { NAMES: JSON.stringify(names) },
          umask,
        );
        const [a, b, c, d] = names as [string, string, string, string];
        assert.deepEqual(out, { [a]: 0o640, [b]: 0o600, [c]: 0o640, [d]: 0o600 });
        assert.equal(statSync(shmFile(a)).mode & 0o777, 0o640);
        assert.equal(statSync(shmFile(b)).mode & 0o777, 0o600);
        assert.equal(statSync(semFile(c)).mode & 0o777, 0o640);
        assert.equal(statSync(semFile(d)).mode & 0o777, 0o600);
      } finally {
        removeFile(shmFile(names[0] as string));
        removeFile(shmFile(names[1] as string));
        removeFile(semFile(names[2] as string));
        removeFile(semFile(names[3] as string));
      }
    });
  }

  it('in this process too (umask 0o022): a mode of 0o666 is 0o666', () => {
    const shm = newName();
    const sem = newName();
    try {
      using a = SharedMemory.create(shm, 4096, { exclusive: true, mode: 0o666 });
      using b = NamedSemaphore.create(sem, 0, { exclusive: true, mode: 0o666 });
      assert.equal(statSync(shmFile(shm)).mode & 0o777, 0o666);
      assert.equal(statSync(semFile(sem)).mode & 0o777, 0o666);
      assert.equal(a.info().mode, 0o666);
      assert.equal(b.info().mode, 0o666);
    } finally {
      removeFile(shmFile(shm));
      removeFile(semFile(sem));
    }
  });
});

describe('shared names: create never shrinks, and info()', () => {
  it('create of an existing larger object maps the size asked for and leaves the object as large as it was', () => {
    const name = newName();
    try {
      using big = SharedMemory.create(name, 16384, { exclusive: true });
      big.buffer[16383] = 9;
      using small = SharedMemory.create(name, 4096);
      assert.equal(small.length, 4096);
      assert.equal(statSync(shmFile(name)).size, 16384);
      assert.equal(big.buffer[16383], 9);
      assert.equal(small.info().created, false);
      using grown = SharedMemory.create(name, 32768);
      assert.equal(statSync(shmFile(name)).size, 32768);
      assert.equal(grown.length, 32768);
    } finally {
      removeFile(shmFile(name));
    }
  });

  it('info() of open, fromFd and anonymous memory; it stays readable after close', () => {
    const name = newName();
    const uid = process.geteuid?.() ?? -1;
    const gid = process.getegid?.() ?? -1;
    try {
      using created = SharedMemory.create(name, 4096, { exclusive: true });
      using opened = SharedMemory.open(name, { readOnly: true });
      assert.deepEqual(opened.info(), { uid, gid, mode: 0o600, created: false });
      using fromFd = SharedMemory.fromFd(created.fd);
      assert.equal(fromFd.info().created, false);
      using anonymous = SharedMemory.anonymous(4096);
      assert.equal(anonymous.info().created, true);
      assert.equal(anonymous.info().uid, uid);
      const info = created.info();
      info.mode = 0o777;
      assert.equal(created.info().mode, 0o600, 'info() hands out a copy');
      created.close();
      assert.deepEqual(created.info(), { uid, gid, mode: 0o600, created: true });
    } finally {
      removeFile(shmFile(name));
    }
  });

  it('trustOwner is checked: a uid, and only without exclusive', () => {
    const name = newName();
    try {
      for (const create of [
        (options: object) => SharedMemory.create(name, 4096, options),
        (options: object) => NamedSemaphore.create(name, 0, options),
      ]) {
        assertThrowsCode(() => create({ trustOwner: '0' }), 'ERR_INVALID_ARG_TYPE');
        assertThrowsCode(() => create({ trustOwner: -1 }), 'ERR_OUT_OF_RANGE');
        assertThrowsCode(() => create({ trustOwner: 1.5 }), 'ERR_OUT_OF_RANGE');
        assertThrowsCode(() => create({ trustOwner: 2 ** 32 - 1 }), 'ERR_OUT_OF_RANGE');
        assertThrowsCode(() => create({ trustOwner: 0, exclusive: true }), 'ERR_INVALID_ARG_VALUE');
        assertThrowsCode(() => create({ trustowner: 0 }), 'ERR_INVALID_ARG_VALUE');
      }
    } finally {
      removeFile(shmFile(name));
      removeFile(semFile(name));
    }
  });
});
