import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The dev server forwards the API to the local gateway, so the client only ever talks to /api/v1.
export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: { '/api': process.env.ONEX_GATEWAY || 'http://127.0.0.1:8080' },
  },
  build: { chunkSizeWarningLimit: 1500 },
})
