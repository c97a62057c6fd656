/**
 * memmap: memory-mapped files and anonymous memory for Node.js, zero-copy and crash-safe.
 *
 * This file only re-exports; each concept lives in its own module.
 *
 * @module
 */

export type { ChannelCreateOptions, ProducerOptions, SpawnWithChannelOptions } from './channel/channel.js';
export { Channel, spawnWithChannel } from './channel/channel.js';
export type { Codec, CodecFunctions } from './channel/codec.js';
export type { Consumer, ConsumerOptions, Message } from './channel/consumer.js';
export type { Claim, Producer, SendOptions } from './channel/producer.js';
export type { ChannelWaitOptions } from './channel/wait.js';
export type { MemmapErrorCode, SystemCallError, SystemErrorCode } from './errors.js';
export { isSystemCallError, MemmapError } from './errors.js';
export type { MapArrayOptions, MappedArray } from './formats/array.js';
export { mapArray } from './formats/array.js';
export type { CreateNpyOptions, NpyArray, NpyDtype, OpenNpyOptions } from './formats/npy.js';
export { createNpy, openNpy, saveNpy } from './formats/npy.js';
export type {
  OpenSafetensorsOptions,
  SafetensorsDtype,
  SafetensorsInput,
  SafetensorsTensor,
} from './formats/safetensors.js';
export { openSafetensors, SafetensorsFile, saveSafetensors } from './formats/safetensors.js';
export type { SharedObjectInfo } from './internal/ownership.js';
export type { Advice, MemoryStats } from './internal/tuning.js';
export type { TypedArray, TypedArrayConstructor, ViewOptions } from './internal/views.js';
export type { FaultStats } from './introspect.js';
export { faultStats } from './introspect.js';
export type { LineEncoding, LinesOptions, MappingIterator, ReadStreamOptions, ScanRange } from './lines.js';
export type {
  AccessAdvice,
  BindOptions,
  FaultEvent,
  FileTarget,
  LockRangeOptions,
  MapAnonymousOptions,
  MapFileCommonOptions,
  MapFileOptions,
  MapMode,
  NumaPolicy,
  PrefaultOptions,
  Protection,
  RangeOptions,
  Residency,
} from './mapping.js';
export { Mapping, mapAnonymous, mapFile } from './mapping.js';
export type { NumaNode } from './numa.js';
export { numaNodes } from './numa.js';
export type { FaultCounters } from './pagecache.js';
export { evict, faultCounters, fileResidency, prefetch } from './pagecache.js';
export type { Seal, SharedMemoryCreateOptions, SharedMemoryInfo, SharedMemoryOpenOptions } from './shm.js';
export { SharedMemory } from './shm.js';
export { Condition } from './sync/condition.js';
export { Event } from './sync/event.js';
export type { WaitAsyncOptions } from './sync/futex.js';
export { futex } from './sync/futex.js';
export type { LockOptions, LockResult, MutexTarget } from './sync/mutex.js';
export { Mutex } from './sync/mutex.js';
export type { NamedSemaphoreCreateOptions } from './sync/named-semaphore.js';
export { NamedSemaphore } from './sync/named-semaphore.js';
export { Semaphore } from './sync/semaphore.js';
export { pageSize } from './system.js';
