/** How `net listen` prints one message: UTF-8 text, or `base64:` and padded base64. */
const strictUtf8 = new TextDecoder('utf-8', {fatal: true})

/**
 * The message as one line. Content that is not valid UTF-8 is written as
 * `base64:` plus standard padded base64; so is text that could not stand on
 * one line unambiguously (a CR or LF inside, or a leading `base64:`).
 */
export function messageLine(data: Uint8Array): string {
  let text: string | undefined
  try {
    text = strictUtf8.decode(data)
  } catch {
    text = undefined
  }
  if (text === undefined || /[\r\n]/.test(text) || text.startsWith('base64:')) {
    return `base64:${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`
  }
  return text
}
