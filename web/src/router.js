import { createRouter, createWebHashHistory } from 'vue-router'
import { session, homeFor } from './session'
import MainLayout from './components/MainLayout.vue'

const SCHOOL = ['institution', 'institution_sub']
const DEPT = ['municipal', 'provincial']

const routes = [
  { path: '/login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
  { path: '/register', component: () => import('./views/RegisterView.vue'), meta: { public: true } },
  { path: '/forgot', component: () => import('./views/ForgotView.vue'), meta: { public: true } },
  {
    path: '/',
    component: MainLayout,
    children: [
      { path: '', redirect: () => homeFor(session.role) },
      { path: 'school/profile', component: () => import('./views/school/ProfileView.vue'), meta: { roles: SCHOOL, title: '完善基础信息' } },
      { path: 'school/apply', component: () => import('./views/school/ApplyView.vue'), meta: { roles: SCHOOL, title: '证书试点申报' } },
      { path: 'school/sub-accounts', component: () => import('./views/school/SubAccountsView.vue'), meta: { roles: ['institution'], title: '子账号管理' } },
      { path: 'dept/reviews', component: () => import('./views/dept/ReviewView.vue'), meta: { roles: [...DEPT, 'operator', 'org'], title: '申报审核' } },
      { path: 'dept/plans', component: () => import('./views/dept/PlansView.vue'), meta: { roles: ['provincial', 'municipal', 'operator'], title: '申报计划' } },
      { path: 'dept/institutions', component: () => import('./views/dept/InstitutionsView.vue'), meta: { roles: [...DEPT, 'operator'], title: '院校总库' } },
      { path: 'dept/stats', component: () => import('./views/dept/StatsView.vue'), meta: { roles: [...DEPT, 'operator'], title: '统计分析' } },
      { path: 'org/certificates', component: () => import('./views/admin/CertificatesView.vue'), meta: { roles: ['org', 'operator'], title: '证书与专业' } },
      { path: 'admin/accounts', component: () => import('./views/admin/AccountsView.vue'), meta: { roles: ['operator'], title: '账号管理' } },
      { path: 'admin/master', component: () => import('./views/admin/MasterDataView.vue'), meta: { roles: ['operator'], title: '基础数据' } },
      { path: 'notifications', component: () => import('./views/NotificationsView.vue'), meta: { title: '消息通知' } },
      { path: 'password', component: () => import('./views/PasswordView.vue'), meta: { title: '修改密码' } },
    ],
  },
  { path: '/:pathMatch(.*)*', redirect: '/' },
]

export const router = createRouter({ history: createWebHashHistory(), routes })

router.beforeEach((to) => {
  if (to.meta.public) return true
  if (!session.accessToken || !session.me) return { path: '/login', query: { next: to.fullPath } }
  const roles = to.meta.roles
  if (roles && !roles.includes(session.role)) return homeFor(session.role)
  return true
})

router.afterEach((to) => {
  document.title = (to.meta.title ? `${to.meta.title} - ` : '') + '1+X 证书试点院校申报平台'
})
