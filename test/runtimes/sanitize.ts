/**
 * `npm run test:sanitize`: the addon built with AddressSanitizer and UndefinedBehaviorSanitizer
 * in a scratch copy, and the whole test suite run against it with the sanitizer runtime
 * preloaded into node (and into every child process the tests start). A sanitizer report
 * aborts the process concerned, which fails its test.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fullSuite, log, logs, run, scratchBuild } from './scratch.js';

const FLAGS = '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g';

function main(): number {
  const nodeDir = process.env.npm_config_nodedir || resolve(dirname(process.execPath), '..');
  const work = scratchBuild('sanitize', nodeDir, {
    CFLAGS: FLAGS,
    CXXFLAGS: FLAGS,
    LDFLAGS: '-fsanitize=address,undefined',
  });
  const addon = join(work, 'build', 'Release', 'memmap.node');
  const linked = run('sanitize-ldd', 'ldd', [addon], work).stdout;
  if (!/libasan/.test(linked) || !/libubsan/.test(linked)) {
    log(`the sanitized addon does not link the sanitizer runtimes:\n${linked}`);
    return 1;
  }
  const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  const env = {
    LD_PRELOAD: libasan,
    // Node itself is not instrumented and keeps memory until exit: leak reports would be
    // Node's. The SIGBUS and SIGSEGV handlers stay memmap's and V8's, not the sanitizer's.
    ASAN_OPTIONS: 'detect_leaks=0:handle_sigbus=0:handle_segv=0:allow_user_segv_handler=1:halt_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  };
  const count = fullSuite('sanitize', process.execPath, work, env);
  log(`the suite against the addon built with AddressSanitizer and UBSan; log: ${join(logs, 'suite-sanitize.log')}`);
  // The failures again just before the closing line CI reads, where a log cut to its end keeps them.
  for (const block of count.failures ?? []) log(block);
  log(`sanitize: ${count.passed} passed, ${count.failed} failed`);
  return count.failed === 0 ? 0 : 1;
}

process.exitCode = main();
