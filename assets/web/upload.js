// The upload screen: a file picker, a folder picker (webkitdirectory) and a
// drop zone. Each file is one streaming PUT /api/file (XHR, for its upload
// progress), one at a time; per-file and overall <progress>, and cancel.
import {csrf, joinPath, shellWord, showCommand, showStatus} from './common.js'

const box = document.querySelector('.upload')
const dir = box?.dataset.dir ?? '/'
const queueList = document.getElementById('queue')
const overall = document.getElementById('overall')
const overallText = document.getElementById('overall-text')

/** Every file ever queued on this page: {file, path, loaded, state, xhr, bar, label}. */
const jobs = []
let running = false

function setProgress(bar, value, max) {
  bar.setAttribute('max', String(Math.max(max, 1)))
  bar.setAttribute('value', String(Math.min(value, Math.max(max, 1))))
}

function updateOverall() {
  const total = jobs.reduce((sum, job) => sum + job.file.size, 0)
  const loaded = jobs.reduce((sum, job) => sum + (job.state === 'done' ? job.file.size : job.loaded), 0)
  setProgress(overall, loaded, total)
  const done = jobs.filter((job) => job.state === 'done').length
  overallText.textContent = `${done} of ${jobs.length} files, ${Math.round((100 * loaded) / Math.max(total, 1))}%`
}

function addJob(file, relative) {
  const item = document.createElement('li')
  item.dataset.file = relative
  const name = document.createElement('span')
  name.textContent = relative
  const bar = document.createElement('progress')
  setProgress(bar, 0, file.size)
  const label = document.createElement('span')
  label.className = 'state'
  label.textContent = 'queued'
  const cancel = document.createElement('button')
  cancel.type = 'button'
  cancel.textContent = 'Cancel'
  cancel.dataset.action = 'cancel'
  cancel.title = `Cancel ${relative}`
  const job = {file, path: joinPath(dir, relative), loaded: 0, state: 'queued', xhr: undefined, bar, label, item}
  cancel.addEventListener('click', () => cancelJob(job))
  item.append(name, ' ', bar, ' ', label, ' ', cancel)
  queueList.append(item)
  jobs.push(job)
}

function setState(job, state, text = state) {
  job.state = state
  job.item.dataset.state = state
  job.label.textContent = text
  updateOverall()
}

function cancelJob(job) {
  if (job.state === 'queued') setState(job, 'cancelled')
  else if (job.state === 'uploading') job.xhr.abort()
}

document.getElementById('cancel-all')?.addEventListener('click', () => jobs.forEach(cancelJob))

function send(job) {
  return new Promise((resolve) => {
    const overwrite = document.getElementById('overwrite')?.checked
    const xhr = new XMLHttpRequest()
    job.xhr = xhr
    xhr.open('PUT', `/api/file?path=${encodeURIComponent(job.path)}${overwrite ? '&overwrite=1' : ''}`)
    xhr.setRequestHeader('X-CSRF-Token', csrf)
    xhr.setRequestHeader('Content-Type', 'application/octet-stream')
    xhr.upload.addEventListener('progress', (event) => {
      job.loaded = event.loaded
      setProgress(job.bar, event.loaded, job.file.size)
      updateOverall()
    })
    xhr.addEventListener('load', () => {
      if (xhr.status === 201) {
        setProgress(job.bar, job.file.size, job.file.size)
        setState(job, 'done')
        showCommand(`disk-client upload ${shellWord('./' + job.path.replace(/^.*\//, ''))} ${shellWord(job.path)}${overwrite ? ' --overwrite' : ''}`)
      } else {
        let message = `HTTP ${xhr.status}`
        try {
          message = JSON.parse(xhr.responseText).error.message
        } catch {}
        setState(job, 'failed', message)
      }
      resolve()
    })
    xhr.addEventListener('error', () => {
      setState(job, 'failed', 'network error')
      resolve()
    })
    xhr.addEventListener('abort', () => {
      job.loaded = 0
      setProgress(job.bar, 0, job.file.size)
      setState(job, 'cancelled')
      resolve()
    })
    setState(job, 'uploading')
    xhr.send(job.file)
  })
}

async function drain() {
  if (running) return
  running = true
  try {
    for (let job = jobs.find((j) => j.state === 'queued'); job; job = jobs.find((j) => j.state === 'queued')) await send(job)
  } finally {
    running = false
  }
  const failed = jobs.filter((job) => job.state === 'failed').length
  showStatus(failed ? `${failed} uploads failed` : 'All uploads finished.', failed > 0)
}

function enqueue(files) {
  for (const {file, relative} of files) addJob(file, relative)
  updateOverall()
  void drain()
}

for (const input of [document.getElementById('files'), document.getElementById('folder')]) {
  input?.addEventListener('change', () => {
    enqueue([...input.files].map((file) => ({file, relative: file.webkitRelativePath || file.name})))
    input.value = ''
  })
}

/** The files under a dropped entry (a folder is walked), with their paths relative to the drop. */
async function filesOf(entry, prefix = '') {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject))
    return [{file, relative: prefix + entry.name}]
  }
  const reader = entry.createReader()
  const children = []
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject))
    if (batch.length === 0) break
    children.push(...batch)
  }
  const nested = await Promise.all(children.map((child) => filesOf(child, `${prefix}${entry.name}/`)))
  return nested.flat()
}

const drop = document.getElementById('drop')
drop?.addEventListener('dragover', (event) => {
  event.preventDefault()
  drop.classList.add('over')
})
drop?.addEventListener('dragleave', () => drop.classList.remove('over'))
drop?.addEventListener('drop', async (event) => {
  event.preventDefault()
  drop.classList.remove('over')
  const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean)
  const files = entries.length > 0 ? (await Promise.all(entries.map((entry) => filesOf(entry)))).flat() : [...event.dataTransfer.files].map((file) => ({file, relative: file.name}))
  enqueue(files)
})
