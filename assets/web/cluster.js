// The cluster screen, live: the router's status over server-sent events
// (GET /api/cluster/events), rendered with preact + htm, no reload.
import {h, render} from '/static/vendor/preact.js'
import htm from '/static/vendor/htm.js'

const html = htm.bind(h)
const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

function bytes(n) {
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

function Row({m}) {
  const disk = m.disk_free === null || m.disk_total === null ? '—' : `${bytes(m.disk_free)} free of ${bytes(m.disk_total)}`
  return html`<tr data-server=${m.number} data-state=${m.state}>
    <td>${m.number}</td><td>${m.addr || '—'}</td><td class="state">${m.state}</td>
    <td>${m.last_heartbeat_ms < 0 ? '—' : `${m.last_heartbeat_ms} ms ago`}</td><td>${m.keys ?? '—'}</td><td>${m.hints}</td><td>${disk}</td>
  </tr>`
}

const body = document.getElementById('servers')
const summary = document.getElementById('cluster-summary')
const live = document.getElementById('cluster-live')
let first = true

const events = new EventSource('/api/cluster/events')
events.addEventListener('status', (event) => {
  const status = JSON.parse(event.data)
  if (first) {
    // The server rendered the first table; preact takes it over from here.
    body.textContent = ''
    first = false
  }
  render(status.members.map((m) => html`<${Row} key=${m.number} m=${m} />`), body)
  summary.textContent = `${status.servers_up} of ${status.servers} servers up, replicas ${status.replicas}, hints pending ${status.hints_pending}, buffered writes ${status.buffered_writes}`
  live.textContent = `live, updated ${new Date().toLocaleTimeString()}`
  live.classList.remove('error')
})
events.addEventListener('failure', (event) => {
  live.textContent = `the router does not answer: ${JSON.parse(event.data).error.message}`
  live.classList.add('error')
})
events.addEventListener('error', () => {
  live.textContent = 'reconnecting…'
})
