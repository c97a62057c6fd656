// The types of `require('memmap')` for CommonJS code checked by TypeScript (a .cts file, or
// "module": "node16" without "type": "module"). memmap is an ES module, which Node 20.19+
// loads with require(); TypeScript under node16 refuses to type a require of an ES module
// (TS1471, TS1479), so this file gives it the module's shape through a type-only import.
// Type names come from an import type with the same resolution mode:
//   import type { Mapping } from 'memmap' with { 'resolution-mode': 'import' };
import type * as memmapModule from './dist/src/index.js' with { 'resolution-mode': 'import' };

declare const memmap: typeof memmapModule;
export = memmap;
