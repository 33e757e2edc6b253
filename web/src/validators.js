// Client-side checks that mirror the server's, so a user sees a mistake before saving.
const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY'
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

/** GB 32100-2015 unified social credit code with its check character. */
export function isUscc(value) {
  const s = (value || '').toUpperCase()
  if (!/^[0-9A-HJ-NPQRTUWXY]{18}$/.test(s)) return false
  let sum = 0
  for (let i = 0; i < 17; i++) sum += USCC_CHARS.indexOf(s[i]) * USCC_WEIGHTS[i]
  const check = (31 - (sum % 31)) % 31
  return USCC_CHARS[check] === s[17]
}

export const isMobile = (v) => /^1[3-9]\d{9}$/.test(v || '')
export const isEmail = (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v || '')
export const isUrl = (v) => /^https?:\/\/[^\s/$.?#].[^\s]*$/i.test(v || '')

export function rule(check, message, trigger = 'blur') {
  return { validator: (_r, v, cb) => (!v || check(v) ? cb() : cb(new Error(message))), trigger }
}
