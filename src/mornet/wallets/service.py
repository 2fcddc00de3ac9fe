"""Wallet rules: one custodial EOA per user, balances from the chain, relayed transfers."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal

from eth_account import Account
from eth_utils.address import is_address, to_checksum_address
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import TOKENS, AddressEntry, OperationKind, OperationOut
from mornet.changes import cached_read, topics_of
from mornet.crypto import WalletCipher
from mornet.db import utcnow
from mornet.errors import NotFound, ValidationFailed
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.wallets import repository
from mornet.wallets.models import Hold as Hold  # part of this API
from mornet.wallets.models import Wallet as Wallet  # part of this API
from mornet.wallets.schemas import NewHold as NewHold  # part of this API
from mornet.wallets.schemas import WalletOut


class InsufficientBalance(ValidationFailed):
    code = "insufficient_balance"


def _binding(user_id: uuid.UUID, address: str) -> str:
    return f"{user_id}:{address}"


async def open_wallet(session: AsyncSession, *, user_id: uuid.UUID, cipher: WalletCipher) -> Wallet:
    """The user's wallet, created with a fresh key if they have none yet."""
    existing = await repository.of_user(session, user_id)
    if existing is not None:
        return existing
    account = Account.create()
    wallet = Wallet(
        user_id=user_id,
        address=account.address,
        encrypted_key=cipher.encrypt(
            bytes(account.key), binding=_binding(user_id, account.address)
        ),
        created_at=utcnow(),
    )
    session.add(wallet)
    await session.flush()
    return wallet


async def open_missing_wallets(
    session: AsyncSession, *, user_ids: Iterable[uuid.UUID], cipher: WalletCipher
) -> int:
    """Give every listed user without a wallet one (users who predate wallets)."""
    have = await repository.owners(session)
    created = 0
    for user_id in user_ids:
        if user_id not in have:
            await open_wallet(session, user_id=user_id, cipher=cipher)
            created += 1
    return created


async def wallet_of(session: AsyncSession, user_id: uuid.UUID) -> Wallet:
    wallet = await repository.of_user(session, user_id)
    if wallet is None:
        raise NotFound("this user has no wallet yet", code="wallet_not_found")
    return wallet


ADDRESS_TOPICS = topics_of(Wallet)


async def address_of(session: AsyncSession, user_id: uuid.UUID) -> str:
    """The user's wallet address (a `NotFound` when there is none yet). A wallet's address
    never changes once opened, so it is kept in the process's cache while no wallet moves."""

    async def read() -> str | None:
        return (await repository.addresses_of(session, [user_id])).get(user_id)

    address = await cached_read(session, "wallets.address", ADDRESS_TOPICS, user_id, read)
    if address is None:
        raise NotFound("this user has no wallet yet", code="wallet_not_found")
    return address


WALLET_TOPICS = topics_of(Wallet, Hold)
"""Wallets and what their holds keep aside change only when these move."""


async def address_and_held(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[str, dict[str, Decimal]]:
    """The user's wallet address and what its open holds keep aside (as `held_tokens`), in
    one look at the process's cache while no wallet or hold changed."""

    async def read() -> tuple[str, dict[str, Decimal]]:
        return (await wallet_of(session, user_id)).address, await _held_tokens(session, user_id)

    return await cached_read(session, "wallets.shown", WALLET_TOPICS, user_id, read)


SHOWN_WALLET_MAX_AGE_S = 5.0
"""How long a shown wallet is kept while nothing the platform or the chain's watcher sees
moved (a bound on what a missed chain event could leave stale)."""


async def wallet_shown(
    session: AsyncSession, handle: chain.ChainHandle | None, user_id: uuid.UUID
) -> WalletOut:
    """The user's wallet as shown: the balance book's balances and what holds keep aside,
    from the process's cache while no wallet, hold or balance moved."""

    async def read() -> WalletOut:
        address, held = await address_and_held(session, user_id)
        return WalletOut(address=address, balances=await balances(handle, address), held=held)

    return await chain.cached_with_shown_balances(
        session, handle, "wallets.out", WALLET_TOPICS, user_id, read, max_age=SHOWN_WALLET_MAX_AGE_S
    )


async def addresses_of(
    session: AsyncSession, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The wallet address of each user (one query); every user must have a wallet."""
    found = await repository.addresses_of(session, user_ids)
    if missing := set(user_ids) - found.keys():
        raise NotFound(f"{len(missing)} user(s) have no wallet yet", code="wallet_not_found")
    return found


async def lock_wallet(session: AsyncSession, user_id: uuid.UUID) -> Wallet:
    """The user's wallet, locked until the transaction ends: moves out of it that are decided
    in this transaction (a balance check, a hold) cannot interleave with another one's."""
    wallet = await repository.of_user(session, user_id, lock=True)
    if wallet is None:
        raise NotFound("this user has no wallet yet", code="wallet_not_found")
    return wallet


async def lock_wallets(
    session: AsyncSession, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Wallet]:
    """`lock_wallet` for many users at once (one query; users without a wallet are left out)."""
    return {w.user_id: w for w in await repository.lock_of_users(session, user_ids)}


async def available(
    session: AsyncSession, handle: chain.ChainHandle | None, wallet: Wallet, token: str
) -> int:
    """Base units the wallet can still spend: its balance on chain less its moves in flight
    and its holds."""
    live = _require(handle)
    return (
        await live.balance_of(token, wallet.address)
        - await chain.pending_debits(session, wallet.address, token)
        - (await held(session, [wallet.user_id], [token])).get((wallet.user_id, token), 0)
    )


async def held(
    session: AsyncSession, user_ids: Collection[uuid.UUID], tokens: Collection[str] | None = None
) -> dict[tuple[uuid.UUID, str], int]:
    """Base units held per (user, token)."""
    totals: dict[tuple[uuid.UUID, str], int] = {}
    for hold in await repository.open_holds(session, user_ids, tokens):
        key = (hold.user_id, hold.token)
        totals[key] = totals.get(key, 0) + int(hold.units)
    return totals


class InsufficientToHold(InsufficientBalance):
    @classmethod
    def of(cls, token: str, spendable: int, units: int) -> InsufficientToHold:
        """`units` of `token` (base units) asked to be held, `spendable` available."""
        return cls(
            f"not enough {token}: {chain.from_base_units(max(spendable, 0))} available, "
            f"{chain.from_base_units(units)} needed"
        )


async def hold_at(
    session: AsyncSession, *, user_id: uuid.UUID, token: str, units: int, reference: str
) -> None:
    """Make the hold `reference` keep exactly `units` aside (created if new, closed at 0), with
    no balance check: it may exceed the balance — what arrives is then held as it arrives."""
    hold = await repository.hold_by_reference(session, reference)
    if hold is None:
        if units > 0:
            session.add(Hold(user_id=user_id, token=token, units=str(units), reference=reference))
            await session.flush()
        return
    await set_hold(session, reference, units)


async def write_holds(
    session: AsyncSession, opened: Sequence[NewHold], changed: Mapping[str, int]
) -> None:
    """Open the holds `opened` (no balance check: the caller checked them under
    `lock_wallets`), then set what each hold in `changed` (by reference) keeps aside now, 0
    closing it — a statement each, however many holds."""
    now = utcnow()
    await repository.insert_holds(
        session,
        [
            {
                "id": uuid.uuid4(),
                "user_id": h.user_id,
                "token": h.token,
                "units": str(max(h.units, 0)),
                "reference": h.reference,
                "is_open": h.units > 0,
                "created_at": now,
                "updated_at": now,
            }
            for h in opened
        ],
    )
    await repository.set_holds(
        session,
        [
            {"ref": reference, "units": str(max(units, 0)), "is_open": units > 0, "at": now}
            for reference, units in changed.items()
        ],
    )


async def set_hold(session: AsyncSession, reference: str, units: int) -> None:
    """What a hold keeps aside now (less once part of it was taken or freed); 0 closes it."""
    hold = await repository.hold_by_reference(session, reference)
    if hold is None:
        return
    hold.units = str(max(units, 0))
    hold.is_open = units > 0
    hold.updated_at = utcnow()
    await session.flush()


async def available_of(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    owned: Collection[Wallet],
    tokens: Collection[str],
    *,
    shown: bool = False,
) -> dict[tuple[str, str], int]:
    """`available` for every (wallet address, token) pair: the balances read from the chain
    in batches, the moves in flight in one query. `shown`: for display only, the balances
    may come from the chain's balance book (never when deciding a spend)."""
    live = _require(handle)
    pairs = [(wallet.address, token) for wallet in owned for token in tokens]
    if shown:
        book = {w.address: await live.shown_balances(w.address, list(tokens)) for w in owned}
        balances = [book[address][token] for address, token in pairs]
    else:
        balances = await live.balances_of([(t, a) for a, t in pairs])
    debits = await chain.pending_debits_of(session, [a for a, _ in pairs], tokens)
    holds = await held(session, [w.user_id for w in owned], tokens)
    users = {wallet.address: wallet.user_id for wallet in owned}
    return {
        (address, token): balance
        - debits.get((address, token), 0)
        - holds.get((users[address], token), 0)
        for (address, token), balance in zip(pairs, balances, strict=True)
    }


def unlock_key(wallet: Wallet, cipher: WalletCipher) -> bytes:
    """The wallet's private key, for signing inside the platform only (never returned)."""
    return cipher.decrypt(wallet.encrypted_key, binding=_binding(wallet.user_id, wallet.address))


async def sign_digest(
    session: AsyncSession, user_id: uuid.UUID, cipher: WalletCipher, digest: bytes
) -> tuple[str, bytes]:
    """The user's wallet signs a 32-byte digest (a Safe transaction's hash): (address,
    r ‖ s ‖ v with v 27/28). The key is decrypted for this signature only."""
    wallet = await wallet_of(session, user_id)
    signed = Account.from_key(unlock_key(wallet, cipher)).unsafe_sign_hash(digest)
    signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    return wallet.address, signature


async def user_of_address(session: AsyncSession, address: str) -> uuid.UUID | None:
    """Whose custodial wallet `address` is (None: not a wallet of the platform)."""
    wallet = await repository.by_address(session, to_checksum_address(address))
    return wallet.user_id if wallet is not None else None


def _require(handle: chain.ChainHandle | None) -> chain.ChainHandle:
    if handle is None:
        raise ChainUnavailable()
    return handle


async def held_tokens(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Decimal]:
    """What the user's open holds keep aside, per token (tokens with nothing held are left
    out), from the process's cache while no hold changed."""
    return await cached_read(
        session, "wallets.held", topics_of(Hold), user_id, lambda: _held_tokens(session, user_id)
    )


async def _held_tokens(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Decimal]:
    return {
        token: chain.from_base_units(units)
        for (_, token), units in (await held(session, [user_id])).items()
        if units
    }


async def balances(handle: chain.ChainHandle | None, address: str) -> dict[str, Decimal]:
    """The balances to show for `address` (the chain's balance book)."""
    live = _require(handle)
    units = await live.shown_balances(address, list(TOKENS))
    return {token: chain.from_base_units(units[token]) for token in TOKENS}


REGIONAL = frozenset({"E", "H", "W"})
"""Prepaid units are worth the tariff of a region: they move only between its households."""


class OtherRegion(ValidationFailed):
    code = "other_region"


async def _check_same_region(
    session: AsyncSession, sender_id: uuid.UUID, receiver: str, token: str
) -> None:
    """E, H and W move only to a user with a household in a region where the sender has one
    (a kWh prepaid in one region is not worth the same in another)."""
    receiving = await repository.by_address(session, receiver)
    theirs = await households.regions_of_owner(session, receiving.user_id) if receiving else set()
    if not theirs & await households.regions_of_owner(session, sender_id):
        raise OtherRegion(
            f"{token} is prepaid at a region's tariff: it moves only to a user with a "
            "household in a region where you have one"
        )


async def resolve_address(session: AsyncSession, account: str) -> str:
    """An address from a user id, an email, or an address."""
    account = account.strip()
    if is_address(account):
        return to_checksum_address(account)
    try:
        user_id = uuid.UUID(account)
    except ValueError:
        user = await identity.user_by_email(session, account) if "@" in account else None
        if user is None:
            raise ValidationFailed(
                f"{account!r} is neither a known user, an email of one, nor an address",
                code="unknown_account",
            ) from None
        user_id = user.id
    return (await wallet_of(session, user_id)).address


async def history(session: AsyncSession, wallet: Wallet, *, limit: int = 100) -> list[AddressEntry]:
    return await chain.entries_of(session, wallet.address, limit=limit)


async def transfer(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    user_id: uuid.UUID,
    token: str,
    to: str,
    amount: Decimal,
    idempotency_key: str,
) -> OperationOut:
    """Queue a relayed transfer after checking the balance left once pending moves are
    reserved. Nothing is queued when the balance is short."""
    live = _require(handle)
    if token not in TOKENS:
        raise ValidationFailed(f"unknown token {token!r}", code="unknown_token")
    units = chain.to_base_units(amount)
    # Locked so two transfers from one wallet cannot both spend the same balance.
    wallet = await lock_wallet(session, user_id)
    # A retry of a transfer that was already accepted is answered without a new check.
    scoped_key = f"transfer:{user_id}:{idempotency_key}"
    spendable = await available(session, live, wallet, token)
    existing_ok = await chain.operation_for_key(session, scoped_key)
    # The balance is checked before the receiver is looked up: otherwise the answer would
    # tell anyone, funds or not, which emails have an account.
    if existing_ok is None and units > spendable:
        raise InsufficientBalance(
            f"not enough {token}: {chain.from_base_units(max(spendable, 0))} available, "
            f"{amount} requested"
        )
    receiver = await resolve_address(session, to)
    if receiver == wallet.address:
        raise ValidationFailed("a transfer to your own wallet moves nothing", code="self_transfer")
    if token in REGIONAL:
        await _check_same_region(session, user_id, receiver, token)
    move = chain.Move(amount=units, sender=wallet.address, receiver=receiver)
    operation, _ = await chain.request(
        session,
        live,
        token=token,
        kind=OperationKind.TRANSFER,
        moves=[move],
        idempotency_key=scoped_key,
        requested_by=user_id,
    )
    return OperationOut.of(operation)
