import { h, type VNode } from 'preact';
import htm from 'htm';

/**
 * Tagged templates that build preact elements: JSX without a compiler. Every template in the
 * console has one root element, so the result is one VNode (htm returns an array only for several
 * roots); its values are `unknown`, which is what htm can promise.
 */
export const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;
