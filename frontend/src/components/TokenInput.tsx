// A field that takes one token (or a comma-separated list) as the server reads it: what is typed,
// and under it either why it cannot be sent (several tokens, with their pieces; a bad quote) or the
// id the server read it as, checked live while typing (see useTokenField).
import type { TokenField, TokenListField } from '../hooks/useTokenField';

interface Props {
  label: string;
  field: TokenField | TokenListField;
  placeholder: string;
  /** Names the error (`${testId}-error`) and the id line (`${testId}-id`). */
  testId: string;
  /** The field's tooltip. */
  title?: string;
}

function idsText(field: TokenField | TokenListField): string | null {
  if ('id' in field) return field.id === null ? null : `token id ${field.id}`;
  if (field.ids.length === 0 || field.ids.some((id) => id === null)) return null;
  return `token id${field.ids.length === 1 ? '' : 's'} ${field.ids.join(', ')}`;
}

export function TokenInput({ label, field, placeholder, testId, title }: Props) {
  const ids = field.error ? null : idsText(field);
  return (
    <div className="patch-token">
      <label className="stack">
        <span className="label">{label}</span>
        <input className="input mono" value={field.text} placeholder={placeholder} title={title} aria-invalid={!!field.error} onChange={(e) => field.set(e.target.value)} />
      </label>
      {field.error ? (
        <div className="inline-error" role="alert" data-testid={`${testId}-error`}>
          {field.error}
        </div>
      ) : (
        ids !== null && (
          <div className="muted small" data-testid={`${testId}-id`}>
            {ids}
          </div>
        )
      )}
    </div>
  );
}
