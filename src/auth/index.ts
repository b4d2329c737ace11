import {setTimeout as sleep} from 'node:timers/promises'

import {AuthError, TemporaryError, UsageError} from '../base/index.js'

export const DEFAULT_OAUTH_URL = 'https://oauth.yandex.ru'

/** Yandex OAuth's answer to `POST /device/code`. */
export interface DeviceCode {
  device_code: string
  user_code: string
  verification_url: string
  /** Seconds between token requests. */
  interval?: number
  /** Seconds the codes live. */
  expires_in?: number
}

export interface DeviceLoginOptions {
  clientId: string
  clientSecret?: string
  /** Base of Yandex OAuth; default https://oauth.yandex.ru. */
  oauthUrl?: string
  /** Told the code and where to enter it, once. */
  prompt: (code: DeviceCode) => void
  /** Milliseconds per second of the server's interval (tests shorten it). Default 1000. */
  secondMs?: number
  /** Attempts after the first for a request that gets no answer or a 5xx. Default 5. */
  retries?: number
  log?: (message: string) => void
}

/**
 * The OAuth device flow of Yandex OAuth (RFC 8628 in Yandex's form):
 * `POST /device/code` with client_id, show the user code and URL, then
 * `POST /token` with grant_type=device_code&code=… at the interval the
 * server gives, waiting longer after `slow_down`, until a token comes.
 * A denied or expired code is an AuthError (exit 7); no answer at all a
 * TemporaryError (exit 5).
 */
export async function deviceLogin(options: DeviceLoginOptions): Promise<string> {
  if (!options.clientId) throw new UsageError('no OAuth client id', {hint: 'pass --client-id or set YANDEX_CLIENT_ID'})
  const base = (options.oauthUrl || DEFAULT_OAUTH_URL).replace(/\/+$/, '')
  const second = options.secondMs ?? 1000
  const code = await post<DeviceCode>(`${base}/device/code`, {client_id: options.clientId}, options)
  if (code.status !== 200 || !code.body.device_code || !code.body.user_code) {
    throw new AuthError(`cannot start the login: Yandex OAuth refused the client id (HTTP ${code.status}${errorOf(code.body)})`)
  }

  options.prompt(code.body)
  let interval = Math.max(1, code.body.interval ?? 5)
  const deadline = Date.now() + (code.body.expires_in ?? 600) * second
  for (;;) {
    await sleep(interval * second)
    if (Date.now() > deadline) throw new AuthError('the login code expired before it was confirmed', {hint: 'run login again'})
    const form: Record<string, string> = {grant_type: 'device_code', code: code.body.device_code, client_id: options.clientId}
    if (options.clientSecret) form.client_secret = options.clientSecret
    const answer = await post<{access_token?: string; error?: string; error_description?: string}>(`${base}/token`, form, options)
    if (answer.status === 200 && answer.body.access_token) return answer.body.access_token
    const error = answer.body.error
    if (error === 'authorization_pending') continue
    if (error === 'slow_down') {
      interval += 5
      options.log?.(`login: asked to slow down; polling every ${interval} s`)
      continue
    }

    if (error === 'access_denied') throw new AuthError('the login was denied', {backendCode: error})
    if (error === 'expired_token' || error === 'invalid_grant') {
      throw new AuthError('the login code expired or is no longer valid', {backendCode: error, hint: 'run login again'})
    }

    throw new AuthError(`the login failed (HTTP ${answer.status}${errorOf(answer.body)})`, {backendCode: error})
  }
}

function errorOf(body: unknown): string {
  const b = body as {error?: string; error_description?: string} | undefined
  return b?.error ? `: ${b.error}${b.error_description ? `, ${b.error_description}` : ''}` : ''
}

/** One form POST; network failures and 5xx are retried with backoff, then a TemporaryError. */
async function post<T>(url: string, form: Record<string, string>, options: DeviceLoginOptions): Promise<{status: number; body: T}> {
  const retries = options.retries ?? 5
  for (let attempt = 0; ; attempt++) {
    let failure: string
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'disk-client'},
        body: new URLSearchParams(form).toString(),
      })
      const text = await response.text()
      if (response.status < 500) {
        let body: T
        try {
          body = JSON.parse(text) as T
        } catch {
          body = {} as T
        }

        return {status: response.status, body}
      }

      failure = `HTTP ${response.status}`
    } catch (error) {
      failure = (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message
    }

    if (attempt >= retries) throw new TemporaryError(`cannot reach Yandex OAuth at ${url}: ${failure}`)
    const delay = Math.min(8000, 500 * 2 ** attempt) * ((options.secondMs ?? 1000) / 1000)
    options.log?.(`login: ${failure}; retry ${attempt + 1} of ${retries} in ${delay} ms`)
    await sleep(delay)
  }
}
