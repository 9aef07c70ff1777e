/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The API lives on the same origin in production (`logitlens serve --frontend-dir frontend/dist`).
// In development (`npm run dev`) Vite proxies these paths to the server; override its address with
// LOGITLENS_API=http://127.0.0.1:PORT.
const apiTarget = process.env.LOGITLENS_API ?? 'http://127.0.0.1:8000';
const apiPaths = [
  '/load_model',
  '/load_lens',
  '/eval_lens',
  '/model_status',
  '/models',
  '/events',
  '/inference',
  '/generate',
  '/patch',
  '/tokenize',
  '/save_state',
  '/sessions',
  '/load_session',
  '/delete_session',
  '/diff_sessions',
  '/save_visualization',
  '/save_grid_visualization',
  '/runs',
  '/openapi.json',
];

export default defineConfig({
  // Relative asset URLs: the built app works wherever the server mounts it.
  base: './',
  plugins: [react()],
  server: {
    proxy: Object.fromEntries(apiPaths.map((p) => [p, { target: apiTarget, changeOrigin: true }])),
  },
  build: {
    outDir: 'dist',
    sourcemap: false,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
    css: false,
  },
});
