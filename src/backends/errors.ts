/** The typed errors live in the bottom layer (src/base/); backends' own files keep importing them from here. */
export * from '../base/errors.js'
