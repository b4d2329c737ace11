// The home screen: selection, new folder, rename or move, copy (also to
// another backend), delete with confirmation. Each action calls the JSON
// API, shows its `disk-client` command, and reloads the listing.
import {api, joinPath, parentPath, shellWord, showCommand, showStatus} from './common.js'

const toolbar = document.querySelector('.toolbar')
const dir = toolbar?.dataset.dir ?? '/'

function selected() {
  return [...document.querySelectorAll('tr[data-path]')]
    .filter((row) => row.querySelector('input.select')?.checked)
    .map((row) => ({path: row.dataset.path, type: row.dataset.type}))
}

document.getElementById('select-all')?.addEventListener('change', (event) => {
  for (const box of document.querySelectorAll('input.select')) box.checked = event.target.checked
})

async function run(label, work) {
  showStatus(`${label}…`)
  try {
    await work()
    showStatus(`${label}: done`)
    location.reload()
  } catch (error) {
    showStatus(`${label}: ${error.message}`, true)
  }
}

const actions = {
  async mkdir() {
    const name = prompt('New folder name (or a full path):')
    if (!name) return
    const path = name.startsWith('/') || /^[a-z]+:/.test(name) ? name : joinPath(dir, name)
    await run(`mkdir ${path}`, async () => {
      await api('POST', '/api/mkdir', {path})
      showCommand(`disk-client mkdir ${shellWord(path)}`)
    })
  },

  async rename() {
    const items = selected()
    if (items.length !== 1) return showStatus('Select one entry to rename or move.', true)
    const src = items[0].path
    const answer = prompt(`Rename or move ${src} to (a new name, or a full path):`, src.replace(/^.*\//, ''))
    if (!answer) return
    const dst = answer.startsWith('/') || /^[a-z]+:/.test(answer) ? answer : joinPath(parentPath(src), answer)
    await run(`mv ${src}`, async () => {
      await api('POST', '/api/mv', {src, dst})
      showCommand(`disk-client mv ${shellWord(src)} ${shellWord(dst)}`)
    })
  },

  async copy() {
    const items = selected()
    if (items.length === 0) return showStatus('Select what to copy.', true)
    const dst = prompt('Copy to (a folder, or a full path; another backend too, e.g. cluster:/backup):', dir)
    if (!dst) return
    await run(`cp to ${dst}`, async () => {
      for (const item of items) {
        await api('POST', '/api/cp', {src: item.path, dst})
        showCommand(`disk-client cp ${shellWord(item.path)} ${shellWord(dst)}`)
      }
    })
  },

  async delete() {
    const items = selected()
    if (items.length === 0) return showStatus('Select what to delete.', true)
    if (!confirm(`Delete ${items.length} ${items.length === 1 ? 'entry' : 'entries'}?\n${items.map((i) => i.path).join('\n')}`)) return
    await run('delete', async () => {
      for (const item of items) {
        const recursive = item.type === 'dir'
        await api('DELETE', `/api/file?path=${encodeURIComponent(item.path)}${recursive ? '&recursive=1' : ''}`)
        showCommand(`disk-client rm ${recursive ? '-r ' : ''}${shellWord(item.path)}`)
      }
    })
  },
}

for (const button of document.querySelectorAll('button[data-action]')) {
  const action = actions[button.dataset.action]
  if (action) button.addEventListener('click', () => action())
}

for (const link of document.querySelectorAll('a[data-action="download"]')) {
  link.addEventListener('click', () => {
    const path = new URL(link.href).searchParams.get('path') ?? ''
    const name = path.replace(/^.*\//, '') || 'root'
    showCommand(`disk-client download ${shellWord(path)} ${shellWord('./' + name)}`)
  })
}
