const m = await import('/work/main/tests/bench/instances.ts');
try { console.log(await m.bench({ quick: true })); } catch (e) { console.error('ERR', e); }
process.exit(0);
