// The signed-in user: tokens in localStorage, the account from /accounts/me.
import { reactive } from 'vue'

const KEY = 'onex.session'

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || '{}')
  } catch {
    return {}
  }
}

const saved = load()

export const session = reactive({
  accessToken: saved.accessToken || null,
  refreshToken: saved.refreshToken || null,
  me: saved.me || null,
  setTokens(t) {
    this.accessToken = t.access_token
    this.refreshToken = t.refresh_token
    this.save()
  },
  setMe(me) {
    this.me = me
    this.save()
  },
  save() {
    localStorage.setItem(KEY, JSON.stringify({ accessToken: this.accessToken, refreshToken: this.refreshToken, me: this.me }))
  },
  clear() {
    this.accessToken = null
    this.refreshToken = null
    this.me = null
    localStorage.removeItem(KEY)
  },
  get role() {
    return this.me?.role || null
  },
})

export const ROLE_NAMES = {
  institution: '院校管理员',
  institution_sub: '院校子账号',
  municipal: '地市级教育行政部门',
  provincial: '省级教育行政部门',
  org: '培训评价组织',
  operator: '平台运营',
}

export function homeFor(role) {
  return (
    {
      institution: '/school/apply',
      institution_sub: '/school/apply',
      municipal: '/dept/reviews',
      provincial: '/dept/reviews',
      org: '/org/certificates',
      operator: '/admin/accounts',
    }[role] || '/login'
  )
}
