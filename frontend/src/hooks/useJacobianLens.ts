// The Jacobian lens view's state (closed until asked for): what a token's lens vector says at each
// layer (useLensVector), and fitting a lens from the page (useJlensFit). A lens cell's top token
// opens it on that token's lens vector.
import { useState } from 'react';
import type { AttachedJacobianLens } from '../api/types';
import type { ModelLoader } from './useModelLoader';
import { useJlensFit, type JlensFitState } from './useJlensFit';
import { useLensVector, type LensVectorState } from './useLensVector';

export interface JacobianLensState {
  open: boolean;
  setOpen: (v: boolean) => void;
  /** The Jacobian lens attached to the model in service, or null. */
  attached: AttachedJacobianLens | null;
  vector: LensVectorState;
  fit: JlensFitState;
  /** Opens the view on a token's lens vector (a lens cell's top token). */
  showVector: (t: { tokenId: number }) => void;
}

export function useJacobianLens(loader: ModelLoader): JacobianLensState {
  const [open, setOpen] = useState(false);
  const vector = useLensVector(loader, { open });
  const fit = useJlensFit(loader, { open });
  return {
    open,
    setOpen,
    attached: loader.model?.jacobian_lens ?? null,
    vector,
    fit,
    showVector: (t) => {
      setOpen(true);
      vector.show(t);
    },
  };
}
