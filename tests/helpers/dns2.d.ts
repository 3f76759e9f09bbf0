/** dns2 ships no types; the tests use its server and packet builder only. */
declare module 'dns2';
