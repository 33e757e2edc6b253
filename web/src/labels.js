// Chinese labels for the API's enumerations, and small formatters.
export const STATUS = { draft: '待提交', pending: '待审核', approved: '审核通过', rejected: '审核不通过' }
export const STATUS_TAG = { draft: 'info', pending: 'warning', approved: 'success', rejected: 'danger' }
export const STAGE = { municipal: '地市审核', provincial: '省级审核' }
export const DECISION = { approve: '通过', reject: '不通过', return: '退回修改' }
export const LEVEL = { junior: '初级', intermediate: '中级', senior: '高级' }
export const PLAN_STATUS = { draft: '草稿', upcoming: '未开始', open: '申报中', closed: '已截止' }
export const PLAN_STATUS_TAG = { draft: 'info', upcoming: 'warning', open: 'success', closed: 'info' }
export const INST_TYPE = {
  undergraduate: '本科院校',
  higher_vocational: '高职院校',
  secondary_vocational: '中职院校',
}
export const MAJOR_LEVEL = { secondary: '中职', associate: '高职专科', bachelor: '高职本科' }

const fmt = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
})

export function dt(value) {
  if (!value) return ''
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return String(value)
  return fmt.format(d).replace(/\//g, '-')
}

export function certLabel(c) {
  if (!c) return ''
  const name = c.certificate_name || c.name || ''
  const level = LEVEL[c.level] || c.level || ''
  return level && !name.includes(`（${level}）`) ? `${name}（${level}）` : name
}

export function batchLabel(plan) {
  if (!plan) return ''
  return plan.batch_label || plan.title || `${plan.year}年第${plan.batch}次`
}

/** A plan's window in Asia/Shanghai, as the seeds show it. */
export function windowLabel(plan) {
  return plan ? `${dt(plan.opens_at)} ~ ${dt(plan.closes_at)}` : ''
}

/** Visible text length of an HTML fragment (the server counts the same way). */
export function visibleLength(html) {
  const div = document.createElement('div')
  div.innerHTML = html || ''
  return (div.textContent || '').trim().length
}
