import adapter from '@sveltejs/adapter-node';

/**
 * The portal is a Node server (adapter-node) that holds the session and calls
 * the functions through the gateway. Form actions are protected by
 * SvelteKit's origin check (on by default, never turned off here); the
 * content security policy lets only our own scripts run.
 */
export default {
	kit: {
		adapter: adapter({ out: 'build', precompress: true }),
		csp: {
			mode: 'auto',
			directives: {
				'default-src': ['self'],
				'script-src': ['self'],
				'style-src': ['self', 'unsafe-inline'],
				'img-src': ['self', 'data:'],
				'connect-src': ['self'],
				'form-action': ['self'],
				'frame-ancestors': ['none'],
				'base-uri': ['self'],
				'object-src': ['none'],
			},
		},
	},
};
