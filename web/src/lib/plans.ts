/**
 * Plans as customers choose them: one offer per plan name, whatever Kill
 * Bill needs behind it. The catalogue keeps a with-trial and a without-trial
 * plan of the same product (`basic-monthly`, `basic-immediate`); the portal
 * shows one "Basic" card with "14-day free trial" and picks the right plan id
 * from the trial checkbox when the form is sent.
 */
import type { Plan } from './platform';

export type Offer = {
	/** The card's key (a slug of the name): what the form sends. */
	key: string;
	name: string;
	price: Plan['price'];
	resources: Plan['resources'];
	database: Plan['database'];
	/** Trial length when a trial is offered to this customer. */
	trialDays?: number;
	/** Catalogue plan ids behind the card. */
	withTrial?: string;
	withoutTrial?: string;
};

const slug = (s: string) =>
	s
		.toLowerCase()
		.replace(/[^a-z0-9]+/g, '-')
		.replace(/^-+|-+$/g, '');

/** One offer per plan name, in the order the catalogue lists them. */
export function planOffers(plans: Plan[]): Offer[] {
	const out = new Map<string, Offer>();
	for (const p of plans) {
		const key = slug(p.name);
		const o = out.get(key) ?? { key, name: p.name, price: p.price, resources: p.resources, database: p.database };
		if (p.trial) {
			o.withTrial ??= p.id;
			o.trialDays = p.trial.days;
		} else o.withoutTrial ??= p.id;
		out.set(key, o);
	}
	return [...out.values()];
}

/**
 * The catalogue plan and trial flag for a chosen card: the trial plan when
 * the customer wants (and may have) the trial, otherwise the plan without a
 * trial, or the trial plan started without its trial when that is the only one.
 */
export function planFor(offer: Offer, wantsTrial: boolean): { plan: string; trial: boolean } {
	if (wantsTrial && offer.withTrial && offer.trialDays) return { plan: offer.withTrial, trial: true };
	return { plan: (offer.withoutTrial ?? offer.withTrial)!, trial: false };
}

/** A plan id shown as its customer-facing name ("basic-monthly" → "Basic"), from the plans on sale. */
export function planName(plans: Plan[], id: string): string {
	return plans.find((p) => p.id === id)?.name ?? id.split('-')[0].replace(/^./, (c) => c.toUpperCase());
}

/** "1 CPU core · 2 GB memory · 10 GB storage" */
export function resourceWords(r: Plan['resources']): string {
	return `${r.cpu} CPU core${r.cpu === 1 ? '' : 's'} · ${r.memoryMiB / 1024} GB memory · ${r.storageGiB} GB storage`;
}
