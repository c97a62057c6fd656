/**
 * What the producer and the consumer agree on: the object's name comes from the command line;
 * inside it, two semaphores and a slot for one message.
 */
export const EMPTY_AT = 0; // Semaphore: 1 while the slot is free
export const FULL_AT = 16; // Semaphore: 1 while the slot holds a message
export const LENGTH_AT = 32; // uint32: the message's length in bytes
export const TEXT_AT = 64; // the message, UTF-8
export const SIZE = 4096;
export const DONE = '.'; // the last message
