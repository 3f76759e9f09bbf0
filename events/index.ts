export * from './catalog.ts';
export * from './text.ts';
