import { ElMessage } from 'element-plus'

/** Shows the API's Chinese `detail` (and field messages) for a failed call. */
export function showError(err, fallback = '操作失败，请稍后再试') {
  if (!err) return
  let text = err.message || fallback
  if (err.errors?.length) {
    const fields = err.errors.map((e) => e.message).filter(Boolean)
    if (fields.length && !fields.every((f) => text.includes(f))) text += '：' + fields.join('；')
  }
  if (err instanceof TypeError) text = '网络连接失败，请检查网络后重试'
  ElMessage({ type: 'error', message: text, duration: 5000, showClose: true, grouping: true })
}
