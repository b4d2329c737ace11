// Shared by every screen: the CSRF header, JSON calls in the CLI's error
// shape, and the list of equivalent `disk-client` commands.
export const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''

/** A path as a shell word: quoted when it holds anything a shell would read. */
export function shellWord(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`
}

/** Calls the API; resolves with the JSON answer or rejects with the CLI's error message. */
export async function api(method, url, body) {
  const init = {method, headers: {'X-CSRF-Token': csrf}}
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const response = await fetch(url, init)
  const answer = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(answer.error?.message ?? `HTTP ${response.status}`)
  return answer
}

export function showStatus(text, isError = false) {
  const status = document.getElementById('status')
  if (!status) return
  status.textContent = text
  status.classList.toggle('error', isError)
}

const KEY = 'disk-client-commands'

/** Shows a command in the page's list, and keeps it for the next page (actions reload the listing). */
export function showCommand(command) {
  const kept = JSON.parse(sessionStorage.getItem(KEY) ?? '[]')
  kept.unshift(command)
  sessionStorage.setItem(KEY, JSON.stringify(kept.slice(0, 20)))
  renderCommands()
}

function renderCommands() {
  const list = document.getElementById('commands')
  if (!list) return
  list.textContent = ''
  for (const command of JSON.parse(sessionStorage.getItem(KEY) ?? '[]')) {
    const item = document.createElement('li')
    const code = document.createElement('code')
    code.textContent = command
    item.append(code)
    list.append(item)
  }
}

/** `local:/a/b` → `local:/a`; `/a` → `/`. */
export function parentPath(path) {
  const match = /^([a-z]+:)?(.*)$/.exec(path)
  const rest = match[2].replace(/\/[^/]*$/, '') || '/'
  return (match[1] ?? '') + rest
}

export function joinPath(dir, name) {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`
}

// The backend chooser, on every screen that has one.
document.getElementById('backend')?.addEventListener('change', (event) => {
  const screen = event.target.dataset.screen ?? ''
  location.href = `/${screen}?path=${encodeURIComponent(event.target.value + ':/')}`
})

renderCommands()
