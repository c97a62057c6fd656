/**
 * Facts about the system memmap runs on.
 *
 * @module
 */
import { addon } from './native.js';

/**
 * The page size in bytes: the unit the kernel maps, protects and flushes in (4096 on most
 * x86-64 and arm64 Linux systems). memmap aligns offsets to it for you.
 */
export const pageSize: number = addon.pageSize;
