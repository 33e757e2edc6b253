import { ref, onMounted, onBeforeUnmount } from 'vue'

/** True on phone-sized screens; forms put labels on top and dialogs take the full width there. */
export function useIsMobile(breakpoint = 768) {
  const isMobile = ref(window.innerWidth < breakpoint)
  const update = () => (isMobile.value = window.innerWidth < breakpoint)
  onMounted(() => window.addEventListener('resize', update))
  onBeforeUnmount(() => window.removeEventListener('resize', update))
  return isMobile
}
