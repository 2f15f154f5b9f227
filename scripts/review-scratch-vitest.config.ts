import base from '../vitest.config.ts';
export default { ...base, test: { ...base.test, include: ['scripts/review-scratch-*.test.ts'] } };
