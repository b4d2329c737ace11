// One headless Chromium for the whole web test run: Debian's /usr/bin/chromium
// driven by playwright-core (its own browser download is never used). The
// first test file that asks starts it; a root-level after hook closes it.
import {expect} from 'chai'
import {accessSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {chromium, type Browser, type BrowserContext, type Page} from 'playwright-core'

const EXECUTABLE = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
let launching: Promise<Browser> | undefined

export function sharedBrowser(): Promise<Browser> {
  try {
    accessSync(EXECUTABLE)
  } catch {
    throw new Error(`no Chromium at ${EXECUTABLE}: install the Debian package (apt-get install -y chromium), or set CHROMIUM_PATH`)
  }
  launching ??= chromium.launch({executablePath: EXECUTABLE, args: ['--no-sandbox'], headless: true, timeout: 60_000})
  return launching
}

after(async () => {
  const browser = await launching?.catch(() => undefined)
  launching = undefined
  await browser?.close()
  if (shots) rmSync(shots, {recursive: true, force: true})
})

/**
 * Where the screens' screenshots go: docs/ (the README shows them) when
 * UPDATE_SCREENSHOTS=1, else a temporary folder, so a test run leaves the
 * tracked files alone.
 */
export function screenshotPath(name: string): string {
  if (process.env.UPDATE_SCREENSHOTS === '1') return fileURLToPath(new URL(`../../docs/${name}`, import.meta.url))
  shots ??= mkdtempSync(path.join(os.tmpdir(), 'disk-client-web-shots-'))
  return path.join(shots, name)
}

let shots: string | undefined

/** A page that records console errors and uncaught page errors, for `expectNoConsoleErrors`. */
export interface WatchedPage {
  context: BrowserContext
  page: Page
  errors: string[]
}

export async function newWatchedPage(): Promise<WatchedPage> {
  const browser = await sharedBrowser()
  const context = await browser.newContext({acceptDownloads: true, viewport: {width: 1100, height: 720}})
  context.setDefaultTimeout(30_000)
  context.setDefaultNavigationTimeout(60_000)
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} (${page.url()})`)
  })
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message} (${page.url()})`))
  return {context, page, errors}
}

export function expectNoConsoleErrors(watched: WatchedPage): void {
  expect(watched.errors, watched.errors.join('\n')).to.deep.equal([])
}
