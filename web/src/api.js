// The one door to the gateway: tokens, problem+json errors, ETag/If-Match and Idempotency-Key.
import { session } from './session'

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `请求失败（${status}）`)
    this.status = status
    this.code = problem?.code || 'unknown'
    this.errors = problem?.errors || []
    this.problem = problem
  }
}

const BASE = '/api/v1'

function newKey() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID()
  return 'k-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2)
}

export { newKey as idempotencyKey }

function qs(params) {
  if (!params) return ''
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.append(k, String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

async function parseError(res) {
  let problem = null
  try {
    problem = await res.json()
  } catch {
    problem = null
  }
  if (!problem || typeof problem !== 'object') {
    const text = {
      401: '登录已失效，请重新登录',
      403: '没有权限执行此操作',
      404: '请求的内容不存在',
      413: '文件太大',
      429: '操作太频繁，请稍后再试',
      502: '服务暂时不可用，请稍后再试',
      503: '服务暂时不可用，请稍后再试',
      504: '服务响应超时，请稍后再试',
    }[res.status]
    problem = { detail: text || `请求失败（${res.status}）` }
  }
  const err = new ApiError(res.status, problem)
  err.retryAfter = Number(res.headers.get('Retry-After')) || null
  return err
}

let refreshing = null

async function refreshTokens() {
  if (!session.refreshToken) return false
  if (!refreshing) {
    refreshing = (async () => {
      const res = await fetch(`${BASE}/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: session.refreshToken }),
      })
      if (!res.ok) return false
      const data = await res.json()
      session.setTokens(data)
      return true
    })().finally(() => {
      setTimeout(() => (refreshing = null), 0)
    })
  }
  return refreshing
}

/**
 * Calls the API. Returns {data, etag, status, headers}.
 * opts: {method, params, body (JSON), form (FormData), ifMatch, idempotencyKey, raw (Blob result), auth}
 */
export async function request(path, opts = {}) {
  const { method = 'GET', params, body, form, ifMatch, idempotencyKey, raw = false, auth = true } = opts
  const build = () => {
    const headers = { Accept: 'application/json, application/problem+json' }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    if (auth && session.accessToken) headers.Authorization = `Bearer ${session.accessToken}`
    if (ifMatch) headers['If-Match'] = ifMatch
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey
    return {
      method,
      headers,
      body: form !== undefined ? form : body !== undefined ? JSON.stringify(body) : undefined,
    }
  }
  let res = await fetch(`${BASE}${path}${qs(params)}`, build())
  if (res.status === 401 && auth && session.refreshToken && !path.startsWith('/auth/')) {
    if (await refreshTokens()) res = await fetch(`${BASE}${path}${qs(params)}`, build())
  }
  if (res.status === 401 && auth && session.accessToken && !path.startsWith('/auth/')) {
    session.clear()
    window.location.hash = '#/login'
  }
  if (!res.ok) throw await parseError(res)
  let data = null
  if (raw) data = await res.blob()
  else if (res.status !== 204) {
    const text = await res.text()
    data = text ? JSON.parse(text) : null
  }
  return { data, etag: res.headers.get('ETag'), status: res.status, headers: res.headers }
}

export const api = {
  get: (path, params, opts = {}) => request(path, { ...opts, params }).then((r) => r.data),
  post: (path, body, opts = {}) => request(path, { ...opts, method: 'POST', body }).then((r) => r.data),
  put: (path, body, opts = {}) => request(path, { ...opts, method: 'PUT', body }).then((r) => r.data),
  patch: (path, body, opts = {}) => request(path, { ...opts, method: 'PATCH', body }).then((r) => r.data),
  del: (path, opts = {}) => request(path, { ...opts, method: 'DELETE' }).then((r) => r.data),
}

/** Reads every page of a list (for small aggregate views such as statistics). */
export async function fetchAll(path, params = {}, maxPages = 50) {
  const items = []
  let page = 1
  for (;;) {
    const res = await api.get(path, { ...params, page, page_size: 100 })
    const list = Array.isArray(res) ? res : res.items
    items.push(...list)
    if (Array.isArray(res) || items.length >= res.total || list.length === 0 || page >= maxPages) break
    page += 1
  }
  return items
}

export async function download(path, params, filename) {
  const { data } = await request(path, { params, raw: true })
  const url = URL.createObjectURL(data)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
